-- A column moves back to the domain's base type and the domain is dropped.
-- @before
create domain email_address as text check (value like '%@%');
create table customers (id int primary key, email email_address);
insert into customers values (1, 'a@example.com');
-- @after
create table customers (id int primary key, email text);
-- @expect: select email = 'a@example.com' from customers where id = 1
