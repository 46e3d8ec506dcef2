-- An extension created in the managed schema and used by a table.
-- @before
create table documents (id int primary key, body text);
-- @after
create extension if not exists vector;
create table documents (id int primary key, body text, embedding vector(3));
