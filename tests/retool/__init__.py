"""Tests of the retool provider against a fake Retool API held to the OpenAPI document."""
