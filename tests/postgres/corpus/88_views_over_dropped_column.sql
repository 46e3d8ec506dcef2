-- A column a chain of views reads is dropped; the views change with it.
-- @before
create table orders (id int primary key, amount int, note text);
create view order_notes as select id, amount, note from orders;
create view big_order_notes as select id, note from order_notes where amount > 100;
-- @after
create table orders (id int primary key, amount int);
create view order_notes as select id, amount from orders;
create view big_order_notes as select id from order_notes where amount > 100;
