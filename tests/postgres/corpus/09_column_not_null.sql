-- NOT NULL added to one column and removed from another.
-- @expect: select attnotnull from pg_attribute where attrelid = 'customers'::regclass and attname = 'email'
-- @expect: select count(*) = 1 from pg_constraint where conrelid = 'customers'::regclass
-- @before
create table customers (id int primary key, email text, nickname text not null);
insert into customers values (1, 'a@example.com', 'al');
-- @after
create table customers (id int primary key, email text not null, nickname text);
