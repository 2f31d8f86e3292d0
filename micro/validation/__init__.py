"""The validator: evaluation runs, trade metrics, Monte Carlo, safe-f, PSR/DSR, baselines."""
