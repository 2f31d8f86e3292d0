"""Stochastic MuZero networks, value/reward supports, checkpoints."""
