-- A column of an inheritance parent moves to one of its two children only.
-- @before
create table vehicles (id int primary key, name text, seats int);
create table cars () inherits (vehicles);
create table bikes () inherits (vehicles);
-- @after
create table vehicles (id int primary key, name text);
create table cars (seats int) inherits (vehicles);
create table bikes () inherits (vehicles);
