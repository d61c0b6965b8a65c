"""Supervised and sequence tasks (the copying task of thesis section 8.4.1)."""
