-- Widening types: integer to bigint, varchar(10) to varchar(50), numeric precision up.
-- @before
create table orders (id integer primary key, code varchar(10), amount numeric(10,2));
insert into orders values (1, 'A1', 12.50);
-- @after
create table orders (id bigint primary key, code varchar(50), amount numeric(14,2));
