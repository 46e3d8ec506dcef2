-- An index keeps its name but covers other columns (drop and build again).
-- @before
create table orders (id int primary key, customer_id int, placed_at timestamptz);
create index idx_orders_customer on orders (customer_id);
-- @after
create table orders (id int primary key, customer_id int, placed_at timestamptz);
create index idx_orders_customer on orders (customer_id, placed_at);
