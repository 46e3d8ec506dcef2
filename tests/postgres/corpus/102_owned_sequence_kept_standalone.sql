-- A serial column's sequence is kept as a standalone sequence when the column stops using it.
-- @before
create table a (id serial primary key, n int);
select setval('a_id_seq', 41);
-- @after
create sequence a_id_seq;
create table a (id int primary key, n int);
-- @expect: select nextval('a_id_seq') = 42
