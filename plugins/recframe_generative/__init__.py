"""Generative retrieval models for recframe: ``tiger`` (semantic IDs + constrained beam search)."""
