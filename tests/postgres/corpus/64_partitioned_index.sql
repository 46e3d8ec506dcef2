-- An index on a partitioned table (PostgreSQL creates one on each partition).
-- @expect: select bool_and(indisvalid) and count(*) = 2 from pg_index where indrelid in ('measurements'::regclass, 'measurements_2024'::regclass)
-- @before
create table measurements (logged_on date not null, value numeric) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
-- @after
create table measurements (logged_on date not null, value numeric) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
create index idx_measurements_logged_on on measurements (logged_on);
