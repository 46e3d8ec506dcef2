-- A partial index.
-- @before
create table orders (id int primary key, status text, placed_at timestamptz);
-- @after
create table orders (id int primary key, status text, placed_at timestamptz);
create index idx_orders_open on orders (placed_at) where status = 'open';
