"""Benchmarks: scripts that print figures (``python -m autograder.benchmarks.NAME``); none asserts."""
