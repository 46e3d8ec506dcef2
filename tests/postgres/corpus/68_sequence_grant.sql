-- Privileges on a sequence.
-- @before
create sequence invoice_numbers;
-- @after
create sequence invoice_numbers;
grant usage on sequence invoice_numbers to corpus_reader;
