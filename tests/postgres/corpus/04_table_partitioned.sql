-- A range-partitioned table with two partitions.
-- @before
create table customers (id int primary key);
-- @after
create table customers (id int primary key);
create table measurements (logged_on date not null, value numeric) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
create table measurements_2025 partition of measurements for values from ('2025-01-01') to ('2026-01-01');
