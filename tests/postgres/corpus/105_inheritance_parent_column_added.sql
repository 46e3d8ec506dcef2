-- @before
create table vehicles (id int primary key, name text);
create table cars () inherits (vehicles);
-- @after
create table vehicles (id int primary key, name text, seats int);
create table cars () inherits (vehicles);
