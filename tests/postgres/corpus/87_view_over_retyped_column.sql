-- A column a view reads changes type in a way that loses data (the view waits with it).
-- @before
create table orders (id int primary key, reference text);
create view order_refs as select id, reference from orders;
-- @after
create table orders (id int primary key, reference integer);
create view order_refs as select id, reference from orders;
