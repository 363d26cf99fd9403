"""MockFlow benchmarks: run from the repository root as `python -m bench.<name>`; see BENCHMARKS.md."""
