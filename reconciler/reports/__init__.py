"""Reports in three formats: text (rich, colour only on a TTY), JSON (stable, see docs/json-output.md),
and Markdown (pull-request comments and tickets). Every value reaching a report is redacted already."""
