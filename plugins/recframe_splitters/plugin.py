"""Entry point module of recframe_splitters: the built-in train/valid/test splitters.

Each is chosen by ``split.name``; see the ``build_*`` docstrings for the parameters.
"""

from __future__ import annotations

from typing import Any

from recframe.api import SplitterSpec, hookimpl, lazy


@hookimpl
def recframe_register_splitters(registry: Any) -> None:
    registry.add(SplitterSpec(
        name="random",
        build_sql=lazy("recframe_splitters.sql:build_random_sql"),
        build=lazy("recframe_splitters.random_split:build_random"),
        description="Seeded per-user random split by ratios [train, valid, test].",
    ))
    registry.add(SplitterSpec(
        name="temporal",
        build_sql=lazy("recframe_splitters.sql:build_temporal_sql"),
        build=lazy("recframe_splitters.temporal:build_temporal"),
        description="Global time cut: the latest interactions by ratios go to valid/test.",
    ))
    registry.add(SplitterSpec(
        name="leave_one_out",
        build_sql=lazy("recframe_splitters.sql:build_leave_one_out_sql"),
        build=lazy("recframe_splitters.leave_one_out:build_leave_one_out"),
        description="Per user, the last n_test event(s) by time to test, the n_valid "
        "before to valid.",
    ))
    registry.add(SplitterSpec(
        name="cold_items",
        build=lazy("recframe_splitters.cold:build_cold_items"),
        description="Cold-start: a seeded cold_share of items only in valid/test (halves), "
        "the rest split per user as random.",
    ))
    registry.add(SplitterSpec(
        name="cold_users",
        build=lazy("recframe_splitters.cold:build_cold_users"),
        description="Cold-start: a seeded cold_share of users only in valid/test (halves), "
        "the rest split per user as random.",
    ))
