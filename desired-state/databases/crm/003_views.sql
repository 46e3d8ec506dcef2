-- What the customer-support-dashboard reads.
create view open_tickets as
    select t.id, t.subject, t.opened_at, c.email, c.full_name
    from tickets t
    join customers c on c.id = t.customer_id
    where t.status <> 'closed';
