"""micro: a Stochastic MuZero agent that trades FX on 1-minute bars, and the system around it."""

__version__ = "0.1.0"
