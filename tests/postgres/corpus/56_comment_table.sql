-- Comments on a table and a view.
-- @before
create table customers (id int primary key);
create view customer_ids as select id from customers;
comment on view customer_ids is 'old text';
-- @after
create table customers (id int primary key);
create view customer_ids as select id from customers;
comment on table customers is 'Everyone who ever bought something';
comment on view customer_ids is 'Just the ids';
