"""Helpers shared by the template's tests: rendering, tool runs, booted services."""
