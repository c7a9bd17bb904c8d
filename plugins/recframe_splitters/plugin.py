"""Entry point module of recframe_splitters: the built-in train/valid/test splitters.

Each is chosen by ``split.name``; see the ``build_*`` docstrings for the parameters.
"""

from __future__ import annotations

from typing import Any

from recframe.api import SplitterSpec, hookimpl
from recframe_splitters.cold import build_cold
from recframe_splitters.leave_one_out import build_leave_one_out
from recframe_splitters.random_split import build_random
from recframe_splitters.temporal import build_temporal


@hookimpl
def recframe_register_splitters(registry: Any) -> None:
    registry.add(SplitterSpec(
        name="random",
        build=build_random,
        description="Seeded per-user random split by ratios [train, valid, test].",
    ))
    registry.add(SplitterSpec(
        name="temporal",
        build=build_temporal,
        description="Global time cut: the latest interactions by ratios go to valid/test.",
    ))
    registry.add(SplitterSpec(
        name="leave_one_out",
        build=build_leave_one_out,
        description="Per user, the last n_test event(s) by time to test, the n_valid "
        "before to valid.",
    ))
    registry.add(SplitterSpec(
        name="cold_items",
        build=build_cold("items"),
        description="Cold-start: a seeded cold_share of items only in valid/test (halves), "
        "the rest split per user as random.",
    ))
    registry.add(SplitterSpec(
        name="cold_users",
        build=build_cold("users"),
        description="Cold-start: a seeded cold_share of users only in valid/test (halves), "
        "the rest split per user as random.",
    ))
