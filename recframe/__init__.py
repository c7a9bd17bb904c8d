"""recframe: config-driven recommender-system experiments.

Public API for plugin authors lives in :mod:`recframe.api`.
"""

__version__ = "0.1.0"
