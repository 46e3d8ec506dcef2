-- A standalone sequence.
-- @before
-- @after
create sequence invoice_numbers start 1000 increment 1;
