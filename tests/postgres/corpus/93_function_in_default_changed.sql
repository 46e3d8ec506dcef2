-- A function a column default calls changes its signature: created before the default, dropped after.
-- @before
create function next_code() returns text language sql as $$ select 'A' $$;
create table codes (id int primary key, code text default next_code());
-- @after
create function next_code(prefix text default 'B') returns text language sql as $$ select prefix $$;
create table codes (id int primary key, code text default next_code('B'));
