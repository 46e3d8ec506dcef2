-- Enum values reordered (the type is recreated and the column recast).
-- @before
create type size as enum ('large', 'medium', 'small');
create table shirts (id int primary key, size size);
insert into shirts values (1, 'medium');
-- @after
create type size as enum ('small', 'medium', 'large');
create table shirts (id int primary key, size size);
