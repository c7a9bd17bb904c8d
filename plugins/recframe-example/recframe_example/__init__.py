"""recframe-example: an out-of-tree recframe plugin (model, metric, preprocessor, config)."""

__version__ = "0.1.0"
