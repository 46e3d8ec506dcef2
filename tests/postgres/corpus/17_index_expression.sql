-- An expression index.
-- @before
create table customers (id int primary key, email text);
-- @after
create table customers (id int primary key, email text);
create index idx_customers_lower_email on customers (lower(email));
