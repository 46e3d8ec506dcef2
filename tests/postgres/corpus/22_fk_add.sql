-- A foreign key added between existing tables (NOT VALID, then VALIDATE).
-- @expect: select convalidated from pg_constraint where conname = 'orders_customer_id_fkey'
-- @before
create table customers (id int primary key);
create table orders (id int primary key, customer_id int);
insert into customers values (1);
insert into orders values (10, 1);
-- @after
create table customers (id int primary key);
create table orders (id int primary key, customer_id int references customers (id) on delete cascade);
