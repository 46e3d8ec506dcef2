-- A table owning a sequence is dropped while the sequence stays and feeds a new table.
-- @before
create table a (id serial primary key, n int);
-- @after
create sequence a_id_seq;
create table b (id int primary key default nextval('a_id_seq'));
