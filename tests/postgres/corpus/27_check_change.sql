-- A CHECK constraint keeps its name but changes its expression.
-- @before
create table orders (id int primary key, amount numeric, constraint orders_amount_check check (amount > 0));
-- @after
create table orders (id int primary key, amount numeric, constraint orders_amount_check check (amount >= 0));
