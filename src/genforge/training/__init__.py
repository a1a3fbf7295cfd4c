"""The one training loop and what it keeps between sessions: EMA, checkpoint state, devices."""
