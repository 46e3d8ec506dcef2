-- A composite type used by a function.
-- @before
-- @after
create type money_amount as (amount numeric, currency char(3));
create function zero_eur() returns money_amount language sql immutable as $$ select (0, 'EUR')::money_amount $$;
