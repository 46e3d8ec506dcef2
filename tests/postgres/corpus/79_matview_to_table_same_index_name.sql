-- A materialized view with an index becomes a table with an index of the same name.
-- @before
create table events (id int primary key, kind text);
create materialized view totals as select kind, count(*) as n from events group by kind;
create unique index totals_kind on totals (kind);
-- @after
create table events (id int primary key, kind text);
create table totals (kind text, n bigint);
create unique index totals_kind on totals (kind);
