-- Enum values are reordered while a view, and a view over that view, read the column.
-- @before
create type prio as enum ('low', 'high', 'mid');
create table t (id int primary key, p prio default 'low');
create view tv as select id, p from t;
create view tv2 as select id from tv where p = 'high';
-- @after
create type prio as enum ('low', 'mid', 'high');
create table t (id int primary key, p prio default 'low');
create view tv as select id, p from t;
create view tv2 as select id from tv where p = 'high';
