"""Providers: the only code that talks to a live target (platform API, registry tables, PostgreSQL)."""
