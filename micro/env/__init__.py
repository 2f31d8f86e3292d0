"""Batched trading environment: positions, costs, rewards, trade records."""
