"""The Hypothesis example database every property test shares, committed to git.

Hypothesis replays the examples stored here before generating new ones, so a case
that once failed (here or in CI) is tried again on every run until it passes. It
lives in ``tests/.hypothesis-db`` rather than the default ``.hypothesis/`` (ignored:
that folder also holds Hypothesis's local caches, which are not meant for git).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase

DATABASE = DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parent / ".hypothesis-db"))
