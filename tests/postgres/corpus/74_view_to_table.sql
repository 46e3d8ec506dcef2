-- A view replaced by a table of the same name, with its primary key.
-- @before
create table events (id int primary key, kind text);
create view data as select id, kind as payload from events;
-- @after
create table events (id int primary key, kind text);
create table data (id int primary key, payload text);
-- @expect: select relkind = 'r' from pg_class where oid = 'public.data'::regclass
