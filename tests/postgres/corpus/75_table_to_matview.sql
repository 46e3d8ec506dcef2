-- A table replaced by a materialized view of the same name.
-- @before
create table events (id int primary key, kind text);
create table totals (kind text primary key, n bigint);
-- @after
create table events (id int primary key, kind text);
create materialized view totals as select kind, count(*) as n from events group by kind;
-- @expect: select relkind = 'm' from pg_class where oid = 'public.totals'::regclass
