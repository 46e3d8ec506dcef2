-- A function a column default calls is dropped; the default no longer calls it.
-- @before
create function next_code() returns text language sql as $$ select 'A' $$;
create table codes (id int primary key, code text default next_code());
-- @after
create table codes (id int primary key, code text default 'A');
