-- A column with a volatile default (rewrites the table: lock-risk).
-- @before
create table sessions (id int primary key);
insert into sessions values (1), (2);
-- @after
create table sessions (id int primary key, token uuid default gen_random_uuid(), seen_at timestamptz default clock_timestamp());
