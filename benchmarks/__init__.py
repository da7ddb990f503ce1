"""Benchmark harness for pssh: ``python -m benchmarks.run --help`` (see benchmarks/README.md)."""
