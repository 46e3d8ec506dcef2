-- Columns added to a table that has rows.
-- @before
create table customers (id int primary key, email text);
insert into customers values (1, 'a@example.com');
-- @after
create table customers (id int primary key, email text, phone text, score integer default 0);
