-- An extension that is no longer declared (destructive).
-- @before
create extension if not exists vector;
create table documents (id int primary key);
-- @after
create table documents (id int primary key);
