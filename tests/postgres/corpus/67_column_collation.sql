-- A column changes its collation.
-- @before
create table customers (id int primary key, name text);
-- @after
create table customers (id int primary key, name text collate "C");
