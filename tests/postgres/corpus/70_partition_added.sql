-- A partition added to a partitioned table that has a primary key and an index.
-- @before
create table measurements (id bigint not null, logged_on date not null, value numeric, primary key (id, logged_on)) partition by range (logged_on);
create index idx_measurements_value on measurements (value);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
-- @after
create table measurements (id bigint not null, logged_on date not null, value numeric, primary key (id, logged_on)) partition by range (logged_on);
create index idx_measurements_value on measurements (value);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
create table measurements_2025 partition of measurements for values from ('2025-01-01') to ('2026-01-01');
