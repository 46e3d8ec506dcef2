-- A SQL function and a PL/pgSQL function.
-- @before
create table orders (id int primary key, amount numeric);
-- @after
create table orders (id int primary key, amount numeric);
create function order_total(order_id int) returns numeric language sql stable
    as $$ select amount from orders where id = order_id $$;
create function double_it(x int) returns int language plpgsql immutable
    as $$ begin return x * 2; end $$;
