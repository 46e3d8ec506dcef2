-- A procedure.
-- @before
create table audit_log (id bigint generated always as identity primary key, message text);
-- @after
create table audit_log (id bigint generated always as identity primary key, message text);
create procedure log_message(msg text) language sql as $$ insert into audit_log (message) values (msg) $$;
