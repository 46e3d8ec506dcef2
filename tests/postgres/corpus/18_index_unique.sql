-- A unique index on a table with rows.
-- @before
create table customers (id int primary key, email text);
insert into customers values (1, 'a@example.com'), (2, 'b@example.com');
-- @after
create table customers (id int primary key, email text);
create unique index idx_customers_email on customers (email);
