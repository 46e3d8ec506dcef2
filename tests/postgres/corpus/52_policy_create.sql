-- An RLS policy on a table with row level security.
-- @before
create table notes (id int primary key, owner text not null default current_user);
alter table notes enable row level security;
-- @after
create table notes (id int primary key, owner text not null default current_user);
alter table notes enable row level security;
create policy notes_owner on notes for all using (owner = current_user);
