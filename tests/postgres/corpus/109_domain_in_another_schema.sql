-- A domain in a second managed schema, used by a table in the first, NOT NULL removed.
-- @schemas: public, types
-- @before
create schema types;
create domain types.label as varchar(40) not null;
create table tags (id int primary key, label types.label);
-- @after
create schema types;
create domain types.label as varchar(40);
create table tags (id int primary key, label types.label);
