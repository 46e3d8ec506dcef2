-- A serial column on a new table (sequence owned by the column).
-- @before
create table customers (id int primary key);
-- @after
create table customers (id int primary key);
create table notes (id serial primary key, customer_id int references customers (id), body text);
