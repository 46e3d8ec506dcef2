-- A domain's named check changes its definition (dropped and added again).
-- @before
create domain code as text constraint code_format check (value ~ '^[A-Z]{3}$');
create table items (id int primary key, code code);
-- @after
create domain code as text constraint code_format check (value ~ '^[A-Z]{3,4}$');
create table items (id int primary key, code code);
