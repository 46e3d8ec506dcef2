-- Widening types: integer to bigint, varchar(10) to varchar(50), numeric precision up.
-- @expect: select format_type(atttypid, atttypmod) = 'bigint' from pg_attribute where attrelid = 'orders'::regclass and attname = 'id'
-- @expect: select amount = 12.50 from orders
-- @before
create table orders (id integer primary key, code varchar(10), amount numeric(10,2));
insert into orders values (1, 'A1', 12.50);
-- @after
create table orders (id bigint primary key, code varchar(50), amount numeric(14,2));
