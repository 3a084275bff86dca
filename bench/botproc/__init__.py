"""The bot in a process of its own, for the benchmark (run: python -m bench.botproc)."""
