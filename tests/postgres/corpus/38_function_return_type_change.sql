-- A function changes its return type (must be dropped and created again).
-- @expect: select prorettype = 'bigint'::regtype from pg_proc where proname = 'answer'
-- @before
create function answer() returns integer language sql immutable as $$ select 42 $$;
-- @after
create function answer() returns bigint language sql immutable as $$ select 42::bigint $$;
