-- A second managed schema with a table in it.
-- @schemas: public, reporting
-- @before
create table customers (id int primary key);
-- @after
create table customers (id int primary key);
create schema reporting;
create table reporting.daily_totals (day date primary key, total numeric);
