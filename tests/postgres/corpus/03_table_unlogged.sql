-- A table switched to UNLOGGED.
-- @before
create table events (id int primary key, body text);
-- @after
create unlogged table events (id int primary key, body text);
