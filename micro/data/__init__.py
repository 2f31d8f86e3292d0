"""Market data: candle sources (files, OANDA, synthetic), the DuckDB store, sessions and splits."""
