-- Comments on columns: one added, one changed, one removed.
-- @expect: select col_description('customers'::regclass, 4) is null and col_description('customers'::regclass, 3) = 'E.164 format'
-- @before
create table customers (id int primary key, email text, phone text, fax text);
comment on column customers.phone is 'old';
comment on column customers.fax is 'nobody uses this';
-- @after
create table customers (id int primary key, email text, phone text, fax text);
comment on column customers.email is 'Primary contact address';
comment on column customers.phone is 'E.164 format';
