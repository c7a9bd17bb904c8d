"""Hydra config groups of recframe-example (a package so `pkg://recframe_example.conf` works)."""
