-- A composite type replaced by a table of the same name (a table's row type takes the name).
-- @before
create type address as (street text, city text);
-- @after
create table address (street text, city text);
