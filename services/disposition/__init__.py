"""Disposition: what may lawfully be done with each captive, and what was done."""
