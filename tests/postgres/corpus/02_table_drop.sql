-- A table that is no longer declared is dropped (destructive).
-- @before
create table customers (id int primary key);
create table legacy_imports (id int primary key, payload text);
insert into legacy_imports values (1, 'x');
-- @after
create table customers (id int primary key);
