-- An enum value removed (destructive; rows must not use it).
-- @before
create type ticket_status as enum ('open', 'stale', 'closed');
create table tickets (id int primary key, status ticket_status not null default 'open');
insert into tickets values (1, 'open'), (2, 'closed');
-- @after
create type ticket_status as enum ('open', 'closed');
create table tickets (id int primary key, status ticket_status not null default 'open');
