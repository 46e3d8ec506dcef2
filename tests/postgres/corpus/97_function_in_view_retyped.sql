-- A function a view calls gets another argument type along with the column it is called on.
-- @before
create function vat(amount int) returns numeric language sql immutable as $$ select amount * 0.2 $$;
create table orders (id int primary key, amount int);
create view order_vat as select id, vat(amount) as vat from orders;
-- @after
create function vat(amount bigint) returns numeric language sql immutable as $$ select amount * 0.2 $$;
create table orders (id int primary key, amount bigint);
create view order_vat as select id, vat(amount) as vat from orders;
