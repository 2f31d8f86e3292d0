"""Batched chance-node MCTS over array trees, and a plain reference search for tests."""
