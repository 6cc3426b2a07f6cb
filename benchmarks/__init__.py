"""Reproducible benchmarks of feedwatch, each figure a ratio against a baseline measured in the same run.

Run ``python -m benchmarks [--quick] [--only NAME]``; see benchmarks/README.md for what each one measures.
"""

BENCHMARKS = ("matcher", "detection", "startup", "poll", "fleet", "latency", "scale")
