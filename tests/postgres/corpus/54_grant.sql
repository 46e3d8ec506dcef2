-- Privileges granted on a table (to a role the test server has).
-- @before
create table customers (id int primary key, email text);
-- @after
create table customers (id int primary key, email text);
grant select, insert on customers to corpus_reader;
