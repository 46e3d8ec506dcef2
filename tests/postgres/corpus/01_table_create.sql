-- A new table in an empty schema.
-- @before
-- @after
create table customers (
    id bigint generated always as identity primary key,
    email text not null,
    created_at timestamptz not null default now()
);
