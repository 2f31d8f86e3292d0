"""The live trader: one broker protocol (OANDA or simulated), bar clock, risk, journal, the loop."""
