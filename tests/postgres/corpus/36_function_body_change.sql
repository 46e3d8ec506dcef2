-- A function body changes (CREATE OR REPLACE).
-- @before
create function vat(amount numeric) returns numeric language sql immutable as $$ select amount * 0.20 $$;
-- @after
create function vat(amount numeric) returns numeric language sql immutable as $$ select amount * 0.21 $$;
