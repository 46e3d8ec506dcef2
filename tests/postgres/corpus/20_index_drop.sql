-- An index that is no longer declared.
-- @before
create table orders (id int primary key, status text);
create index idx_orders_status on orders (status);
-- @after
create table orders (id int primary key, status text);
