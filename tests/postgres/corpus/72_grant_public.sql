-- A privilege granted to PUBLIC, another revoked from PUBLIC.
-- @before
create table announcements (id int primary key, body text);
grant update on announcements to public;
-- @after
create table announcements (id int primary key, body text);
grant select on announcements to public;
