-- A column moves from an inheritance child up to its parent with another type.
-- @before
create table vehicles (id int primary key, name text);
create table cars (seats text) inherits (vehicles);
-- @after
create table vehicles (id int primary key, name text, seats int);
create table cars () inherits (vehicles);
