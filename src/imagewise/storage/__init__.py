"""Registry storage: what it holds (inventory), space (du), retention, dedup."""
