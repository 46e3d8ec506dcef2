-- A column under a view is narrowed (destructive): the view is recreated in the destructive step.
-- @expect: select exists (select 1 from information_schema.views where table_name = 'big_orders')
-- @before
create table orders (id int primary key, amount bigint, note text);
create view big_orders as select id, amount from orders where amount > 100;
-- @after
create table orders (id int primary key, amount integer, note text);
create view big_orders as select id, amount from orders where amount > 100;
