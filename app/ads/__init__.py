"""Ads: campaigns, the player's ad slot, impressions under a frequency cap."""
