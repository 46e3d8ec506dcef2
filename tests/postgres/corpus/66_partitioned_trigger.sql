-- A row trigger on a partitioned table (PostgreSQL clones it onto each partition).
-- @expect: select count(*) = 2 from pg_trigger where tgname = 'measurements_positive'
-- @before
create table measurements (logged_on date not null, value numeric) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
create function reject_negative() returns trigger language plpgsql as $$
begin if new.value < 0 then raise exception 'negative'; end if; return new; end $$;
-- @after
create table measurements (logged_on date not null, value numeric) partition by range (logged_on);
create table measurements_2024 partition of measurements for values from ('2024-01-01') to ('2025-01-01');
create function reject_negative() returns trigger language plpgsql as $$
begin if new.value < 0 then raise exception 'negative'; end if; return new; end $$;
create trigger measurements_positive before insert on measurements for each row execute function reject_negative();
