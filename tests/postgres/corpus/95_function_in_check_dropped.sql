-- A function a check constraint calls is dropped with the check's new definition.
-- @before
create function is_positive(v int) returns boolean language sql immutable as $$ select v > 0 $$;
create table amounts (id int primary key, v int check (is_positive(v)));
-- @after
create table amounts (id int primary key, v int check (v > 0));
