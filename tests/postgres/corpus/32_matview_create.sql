-- A materialized view.
-- @before
create table orders (id int primary key, customer_id int, amount numeric);
-- @after
create table orders (id int primary key, customer_id int, amount numeric);
create materialized view customer_totals as
    select customer_id, sum(amount) as total from orders group by customer_id;
