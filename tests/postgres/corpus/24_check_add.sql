-- A CHECK constraint added to an existing table.
-- @before
create table orders (id int primary key, amount numeric);
insert into orders values (1, 5);
-- @after
create table orders (id int primary key, amount numeric constraint orders_amount_positive check (amount >= 0));
