-- A primary key added to a table that had none.
-- @before
create table audit_log (id bigint not null, message text);
insert into audit_log values (1, 'created');
-- @after
create table audit_log (id bigint not null primary key, message text);
