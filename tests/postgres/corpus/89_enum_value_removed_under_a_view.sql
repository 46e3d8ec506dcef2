-- An enum value is removed while a view reads the column (and the column has a default).
-- @before
create type ticket_status as enum ('open', 'pending', 'closed');
create table tickets (id int primary key, status ticket_status not null default 'open');
create view open_tickets as select id from tickets where status = 'open';
insert into tickets values (1, 'closed');
-- @after
create type ticket_status as enum ('open', 'closed');
create table tickets (id int primary key, status ticket_status not null default 'open');
create view open_tickets as select id from tickets where status = 'open';
-- @expect: select status = 'closed' from tickets where id = 1
