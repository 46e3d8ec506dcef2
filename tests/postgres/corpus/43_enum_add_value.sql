-- Enum values added in the middle and at the end (ALTER TYPE ... ADD VALUE).
-- @expect: select array_agg(enumlabel order by enumsortorder) = array['open','pending','closed','archived']::name[] from pg_enum where enumtypid = 'ticket_status'::regtype
-- @expect: select count(*) = 2 from tickets
-- @before
create type ticket_status as enum ('open', 'closed');
create table tickets (id int primary key, status ticket_status not null default 'open');
insert into tickets values (1, 'open'), (2, 'closed');
-- @after
create type ticket_status as enum ('open', 'pending', 'closed', 'archived');
create table tickets (id int primary key, status ticket_status not null default 'open');
