"""Benchmarks: each module has add_arguments/run and prints a table (`slm-playground bench ...`)."""
