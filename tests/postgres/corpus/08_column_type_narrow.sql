-- Narrowing types (lossy): text to varchar(20), bigint to integer.
-- @before
create table orders (id bigint primary key, note text);
insert into orders values (1, 'short');
-- @after
create table orders (id integer primary key, note varchar(20));
