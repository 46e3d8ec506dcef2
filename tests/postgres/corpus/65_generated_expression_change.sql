-- A stored generated column changes its expression.
-- @expect: select pg_get_expr(adbin, adrelid) = '((price * (quantity)::numeric) * 1.2)' from pg_attrdef where adrelid = 'items'::regclass
-- @before
create table items (id int primary key, price numeric, quantity int, total numeric generated always as (price * quantity) stored);
-- @after
create table items (id int primary key, price numeric, quantity int, total numeric generated always as (price * quantity * 1.2) stored);
