-- A default removed (a harmless DROP DEFAULT, not destructive).
-- @before
create table customers (id int primary key, status text default 'active');
-- @after
create table customers (id int primary key, status text);
