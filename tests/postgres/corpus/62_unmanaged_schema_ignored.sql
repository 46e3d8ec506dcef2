-- Objects in a schema that is not managed are left alone (no drift, nothing dropped).
-- @expect: select exists (select 1 from information_schema.tables where table_schema = 'ops' and table_name = 'jobs')
-- @before
create table customers (id int primary key);
create schema ops;
create table ops.jobs (id int primary key);
-- @after
create table customers (id int primary key);
create table notes (id int primary key);
