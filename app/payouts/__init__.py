"""Payouts: artists' payout accounts, payout runs, transfers and their ledger postings."""
