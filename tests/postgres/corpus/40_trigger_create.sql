-- A trigger and its trigger function.
-- @before
create table customers (id int primary key, email text, updated_at timestamptz);
-- @after
create table customers (id int primary key, email text, updated_at timestamptz);
create function touch_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end $$;
create trigger customers_touch before update on customers for each row execute function touch_updated_at();
