-- A new enum type used by a new column.
-- @before
create table tickets (id int primary key);
-- @after
create type ticket_priority as enum ('low', 'normal', 'high');
create table tickets (id int primary key, priority ticket_priority not null default 'normal');
