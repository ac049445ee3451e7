"""Pools: periods, the ad-revenue pool split (pro_rata, user_centric) and the period close."""
