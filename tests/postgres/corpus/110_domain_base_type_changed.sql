-- A domain no column uses changes its base type: it is dropped and created again.
-- @before
create domain short_code as varchar(5);
-- @after
create domain short_code as varchar(8);
