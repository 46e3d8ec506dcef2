-- NOT NULL added to one column and removed from another.
-- @before
create table customers (id int primary key, email text, nickname text not null);
insert into customers values (1, 'a@example.com', 'al');
-- @after
create table customers (id int primary key, email text not null, nickname text);
