-- A materialized view replaced by a table of the same name, with its primary key.
-- @before
create table events (id int primary key, kind text);
create materialized view totals as select kind, count(*) as n from events group by kind;
-- @after
create table events (id int primary key, kind text);
create table totals (kind text primary key, n bigint);
-- @expect: select relkind = 'r' from pg_class where oid = 'public.totals'::regclass
