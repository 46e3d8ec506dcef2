-- Privileges that are no longer declared are revoked.
-- @before
create table customers (id int primary key, email text);
grant select, update, delete on customers to corpus_reader;
-- @after
create table customers (id int primary key, email text);
grant select on customers to corpus_reader;
