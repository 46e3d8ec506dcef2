-- A UNIQUE constraint added to an existing table.
-- @before
create table customers (id int primary key, email text);
insert into customers values (1, 'a@example.com');
-- @after
create table customers (id int primary key, email text constraint customers_email_key unique);
