-- A column that owns its sequence is dropped; the sequence goes too.
-- @before
create table invoices (id int primary key, number serial, total int);
-- @after
create table invoices (id int primary key, total int);
