"""Benchmarks that drive the real bot against the in-process emulators (see `bench.stream`)."""
