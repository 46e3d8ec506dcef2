-- Constraints that are no longer declared.
-- @before
create table customers (id int primary key, email text unique, age int check (age > 0));
-- @after
create table customers (id int primary key, email text, age int);
