-- A comment on a function.
-- @before
create function vat(amount numeric) returns numeric language sql immutable as $$ select amount * 0.2 $$;
-- @after
create function vat(amount numeric) returns numeric language sql immutable as $$ select amount * 0.2 $$;
comment on function vat(numeric) is 'UK standard rate';
