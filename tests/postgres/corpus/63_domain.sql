-- A domain type used by a column (migra ignores domains; the provider diffs them itself).
-- @expect: select count(*) = 1 from pg_type where typname = 'email_address' and typtype = 'd'
-- @before
create table customers (id int primary key, email text);
insert into customers values (1, 'a@example.com');
-- @after
create domain email_address as text check (value like '%@%');
create table customers (id int primary key, email email_address);
