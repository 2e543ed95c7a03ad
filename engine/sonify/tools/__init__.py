"""Tools beside the engine: sonify pianoroll, recommend and bench (with its load benchmarks)."""
