-- A column moves from an inheritance child up to its parent, same definition: its values stay.
-- @before
create table vehicles (id int primary key, name text);
create table cars (seats int not null default 4) inherits (vehicles);
insert into cars (id, name, seats) values (1, 'van', 7);
-- @after
create table vehicles (id int primary key, name text, seats int not null default 4);
create table cars () inherits (vehicles);
-- @expect: select seats = 7 from cars where id = 1
