"""Shared page helpers: the DB connection per render, status colours, small widgets.

Pages are layout; this module only adapts catalog/checks data for display.
"""
