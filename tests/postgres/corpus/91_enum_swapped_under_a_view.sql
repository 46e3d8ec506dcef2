-- A column moves to another enum type while a view reads it; the old enum is dropped.
-- @before
create type status_a as enum ('x', 'y');
create table t (id int primary key, s status_a);
create view tv as select id, s from t;
-- @after
create type status_b as enum ('x', 'y', 'z');
create table t (id int primary key, s status_b);
create view tv as select id, s from t;
