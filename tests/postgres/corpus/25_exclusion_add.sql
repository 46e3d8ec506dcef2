-- An exclusion constraint on a range column.
-- @before
create table bookings (id int primary key, room int not null, during tstzrange not null);
-- @after
create table bookings (
    id int primary key,
    room int not null,
    during tstzrange not null,
    constraint bookings_no_overlap exclude using gist (during with &&)
);
