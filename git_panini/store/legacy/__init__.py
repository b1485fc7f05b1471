"""Code that reads formats older than the current one, only to convert them."""
