-- A standalone sequence becomes owned by a new column that takes its values from it.
-- @before
create sequence invoice_numbers;
create table invoices (id int primary key, total int);
-- @after
create sequence invoice_numbers;
create table invoices (id int primary key, total int, number bigint default nextval('invoice_numbers'));
alter sequence invoice_numbers owned by invoices.number;
