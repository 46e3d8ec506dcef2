-- A column type changes under a view that uses it.
-- @before
create table orders (id int primary key, amount integer);
create view big_orders as select id, amount from orders where amount > 100;
-- @after
create table orders (id int primary key, amount bigint);
create view big_orders as select id, amount from orders where amount > 100;
