-- A column moves from an enum to text and the enum is dropped.
-- @before
create type ticket_status as enum ('open', 'closed');
create table tickets (id int primary key, status ticket_status);
-- @after
create table tickets (id int primary key, status text);
