-- A column that is no longer declared is dropped (destructive).
-- @expect: select not exists (select 1 from information_schema.columns where column_name = 'legacy_notes')
-- @before
create table customers (id int primary key, email text, legacy_notes text);
insert into customers values (1, 'a@example.com', 'old');
-- @after
create table customers (id int primary key, email text);
