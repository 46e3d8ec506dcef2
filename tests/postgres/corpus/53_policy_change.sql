-- An RLS policy changes its expression.
-- @before
create table notes (id int primary key, owner text not null default current_user, shared boolean default false);
alter table notes enable row level security;
create policy notes_read on notes for select using (owner = current_user);
-- @after
create table notes (id int primary key, owner text not null default current_user, shared boolean default false);
alter table notes enable row level security;
create policy notes_read on notes for select using (owner = current_user or shared);
