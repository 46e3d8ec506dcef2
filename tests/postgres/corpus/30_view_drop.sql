-- A view that is no longer declared (destructive).
-- @before
create table customers (id int primary key);
create view customer_ids as select id from customers;
-- @after
create table customers (id int primary key);
