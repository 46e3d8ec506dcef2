-- Privileges on a view.
-- @invisible: schemainspect's privilege query compares grantees with pg_tables' owner, which has no row for views
-- @before
create table customers (id int primary key);
create view customer_ids as select id from customers;
-- @after
create table customers (id int primary key);
create view customer_ids as select id from customers;
grant select on customer_ids to corpus_reader;
