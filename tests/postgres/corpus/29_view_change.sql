-- A view changes its column list (cannot be replaced in place: dropped and created).
-- @before
create table customers (id int primary key, email text, name text);
create view customer_list as select id, email, name from customers;
-- @after
create table customers (id int primary key, email text, name text);
create view customer_list as select id, name from customers;
