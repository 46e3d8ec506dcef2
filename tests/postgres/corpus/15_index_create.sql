-- A plain index on an existing table (built CONCURRENTLY).
-- @expect: select indisvalid from pg_index where indexrelid = 'idx_customers_email'::regclass
-- @before
create table customers (id int primary key, email text);
insert into customers values (1, 'a@example.com');
-- @after
create table customers (id int primary key, email text);
create index idx_customers_email on customers (email);
