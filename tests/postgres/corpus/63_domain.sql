-- A domain type used by a column.
-- @limit: migra does not create, alter or drop domains; the column change that uses the domain fails
-- @before
create table customers (id int primary key, email text);
-- @after
create domain email_address as text check (value like '%@%');
create table customers (id int primary key, email email_address);
