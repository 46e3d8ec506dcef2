-- A check is added to a domain in use (NOT VALID, then validated), its default and NOT NULL change.
-- @expect: select convalidated from pg_constraint where conname = 'amount_positive'
-- @before
create domain amount as numeric(12,2) default 1;
create table invoices (id int primary key, total amount);
insert into invoices values (1, 5);
-- @after
create domain amount as numeric(12,2) default 0 not null constraint amount_positive check (value >= 0);
create table invoices (id int primary key, total amount);
