-- A column moves from an inheritance parent down to its child: the child's values stay.
-- @before
create table vehicles (id int primary key, name text, seats int);
create table cars () inherits (vehicles);
insert into cars (id, name, seats) values (1, 'van', 7);
-- @after
create table vehicles (id int primary key, name text);
create table cars (seats int) inherits (vehicles);
-- @expect: select seats = 7 from cars where id = 1
