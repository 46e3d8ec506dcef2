-- A view replaced by a materialized view of the same name.
-- @before
create table events (id int primary key, kind text);
create view totals as select kind, count(*) as n from events group by kind;
-- @after
create table events (id int primary key, kind text);
create materialized view totals as select kind, count(*) as n from events group by kind;
