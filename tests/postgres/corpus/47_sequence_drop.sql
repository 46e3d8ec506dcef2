-- A standalone sequence that is no longer declared (destructive).
-- @before
create sequence invoice_numbers start 1000;
create table invoices (id int primary key);
-- @after
create table invoices (id int primary key);
