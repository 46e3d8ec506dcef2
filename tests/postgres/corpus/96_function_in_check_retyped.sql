-- A function a check constraint calls gets another argument type along with the column.
-- @before
create function is_positive(v int) returns boolean language sql immutable as $$ select v > 0 $$;
create table amounts (id int primary key, v int check (is_positive(v)));
-- @after
create function is_positive(v bigint) returns boolean language sql immutable as $$ select v > 0 $$;
create table amounts (id int primary key, v bigint check (is_positive(v)));
