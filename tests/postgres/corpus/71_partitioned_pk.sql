-- A primary key added to a partitioned table with a partition.
-- @expect: select count(*) = 2 from pg_constraint where contype = 'p' and connamespace = 'public'::regnamespace
-- @before
create table measurements (id bigint not null, logged_on date not null) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
-- @after
create table measurements (id bigint not null, logged_on date not null, primary key (id, logged_on)) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
