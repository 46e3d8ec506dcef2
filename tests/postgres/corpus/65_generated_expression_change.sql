-- A stored generated column changes its expression.
-- @before
create table items (id int primary key, price numeric, quantity int, total numeric generated always as (price * quantity) stored);
-- @after
create table items (id int primary key, price numeric, quantity int, total numeric generated always as (price * quantity * 1.2) stored);
