"""Payout accounts, payout runs and payouts (filled in by the payouts work)."""
