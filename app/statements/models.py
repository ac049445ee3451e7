"""Frozen statements (filled in by the statements work)."""
