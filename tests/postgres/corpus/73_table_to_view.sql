-- A table replaced by a view of the same name (the drop and the create run in one group).
-- @before
create table events (id int primary key, kind text);
create table data (id int primary key, payload text);
insert into events values (1, 'signup');
-- @after
create table events (id int primary key, kind text);
create view data as select id, kind as payload from events;
-- @expect: select payload = 'signup' from data where id = 1
