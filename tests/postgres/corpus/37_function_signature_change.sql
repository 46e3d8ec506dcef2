-- A function gains an argument: the old signature is dropped (destructive), the new one created.
-- @before
create function vat(amount numeric) returns numeric language sql immutable as $$ select amount * 0.20 $$;
-- @after
create function vat(amount numeric, rate numeric) returns numeric language sql immutable
    as $$ select amount * rate $$;
