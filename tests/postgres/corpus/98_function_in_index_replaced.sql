-- An expression index moves to a new function; the old function is dropped.
-- @before
create function norm(t text) returns text language sql immutable as $$ select lower(t) $$;
create table users (id int primary key, email text);
create index users_email_norm on users (norm(email));
-- @after
create function norm2(t text) returns text language sql immutable as $$ select lower(trim(t)) $$;
create table users (id int primary key, email text);
create index users_email_norm on users (norm2(email));
