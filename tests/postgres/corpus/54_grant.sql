-- Privileges granted on a table (to a role the test server has).
-- @expect: select has_table_privilege('corpus_reader', 'customers', 'INSERT') and not has_table_privilege('corpus_reader', 'customers', 'UPDATE')
-- @before
create table customers (id int primary key, email text);
-- @after
create table customers (id int primary key, email text);
grant select, insert on customers to corpus_reader;
