-- A stored generated column is added.
-- @before
create table items (id int primary key, price numeric not null, quantity int not null);
insert into items values (1, 2.5, 4);
-- @after
create table items (
    id int primary key,
    price numeric not null,
    quantity int not null,
    total numeric generated always as (price * quantity) stored
);
