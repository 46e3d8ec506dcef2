-- Customers of the CRM.
create table customers (
    id          bigint generated always as identity primary key,
    email       text not null,
    full_name   text not null,
    plan        text not null default 'free',
    created_at  timestamptz not null default now()
);

create unique index customers_email_key on customers (email);
