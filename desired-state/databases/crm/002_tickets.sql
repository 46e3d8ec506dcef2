-- Support tickets raised by customers.
create type ticket_status as enum ('open', 'pending', 'closed');

create table tickets (
    id           bigint generated always as identity primary key,
    customer_id  bigint not null references customers (id),
    subject      text not null,
    status       ticket_status not null default 'open',
    opened_at    timestamptz not null default now(),
    closed_at    timestamptz
);

create index tickets_customer_id_idx on tickets (customer_id);
