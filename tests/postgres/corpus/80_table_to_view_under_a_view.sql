-- A table another view reads is replaced by a view of the same name.
-- @before
create table events (id int primary key, kind text);
create table data (id int primary key, payload text);
create view data_ids as select id from data;
-- @after
create table events (id int primary key, kind text);
create view data as select id, kind as payload from events;
create view data_ids as select id from data;
