"""The artist's earnings dashboard and the admin's overview."""
