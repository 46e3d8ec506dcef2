-- Privileges on a sequence.
-- @invisible: schemainspect reads table privileges only (information_schema.role_table_grants)
-- @before
create sequence invoice_numbers;
-- @after
create sequence invoice_numbers;
grant usage on sequence invoice_numbers to corpus_reader;
