-- A view over an existing table.
-- @before
create table customers (id int primary key, email text, active boolean default true);
-- @after
create table customers (id int primary key, email text, active boolean default true);
create view active_customers as select id, email from customers where active;
