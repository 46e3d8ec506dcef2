-- A column moves from an inheritance child up to its parent, gaining NOT NULL and a default.
-- @before
create table vehicles (id int primary key, name text);
create table cars (seats int) inherits (vehicles);
-- @after
create table vehicles (id int primary key, name text, seats int not null default 4);
create table cars () inherits (vehicles);
