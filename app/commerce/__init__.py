"""Commerce: carts, orders, checkout through a payment gateway, and the posting rules."""
