-- Defaults set and changed.
-- @before
create table customers (id int primary key, status text, tier int default 1);
-- @after
create table customers (id int primary key, status text default 'active', tier int default 2);
