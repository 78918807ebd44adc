"""Load and throughput benchmarks of the whole stack; `python -m bench.run`."""
