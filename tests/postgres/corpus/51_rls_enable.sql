-- Row level security switched on.
-- @before
create table notes (id int primary key, owner text not null default current_user);
-- @after
create table notes (id int primary key, owner text not null default current_user);
alter table notes enable row level security;
