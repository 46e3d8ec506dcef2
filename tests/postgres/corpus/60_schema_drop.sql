-- A managed schema that is no longer declared (destructive).
-- @schemas: public, scratchpad
-- @before
create table customers (id int primary key);
create schema scratchpad;
-- @after
create table customers (id int primary key);
