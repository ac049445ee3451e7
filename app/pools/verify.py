"""The pools' checks for `megabox ledger verify` (filled in with the period close)."""
