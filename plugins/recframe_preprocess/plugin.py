"""Entry point module of recframe_preprocess: the built-in preprocessing steps.

Each step is one entry of the ``preprocess`` config list, ``{name: <key>, ...params}``;
see the ``build_*`` docstrings for the parameters.
"""

from __future__ import annotations

from typing import Any

from recframe.api import PreprocessorSpec, hookimpl, lazy


@hookimpl
def recframe_register_preprocessors(registry: Any) -> None:
    registry.add(PreprocessorSpec(
        name="drop_invalid",
        build_sql=lazy("recframe_preprocess.sql:build_drop_invalid_sql"),
        build=lazy("recframe_preprocess.clean:build_drop_invalid"),
        description="Drop rows with null ids or a null/NaN/inf rating or timestamp.",
    ))
    registry.add(PreprocessorSpec(
        name="dedup",
        build_sql=lazy("recframe_preprocess.sql:build_dedup_sql"),
        build=lazy("recframe_preprocess.clean:build_dedup"),
        description="One row per (user, item): keep the latest by timestamp, else the last.",
    ))
    registry.add(PreprocessorSpec(
        name="binarize",
        build_sql=lazy("recframe_preprocess.sql:build_binarize_sql"),
        build=lazy("recframe_preprocess.binarize:build_binarize"),
        description="Keep rating >= threshold (default 4.0) as rating 1.0; "
        "keep_negatives=true keeps all rows as 1.0/0.0.",
    ))
    registry.add(PreprocessorSpec(
        name="kcore",
        build_sql=lazy("recframe_preprocess.sql:build_kcore_sql"),
        build=lazy("recframe_preprocess.kcore:build_kcore"),
        description="Iteratively drop users/items with fewer than user_min/item_min "
        "interactions (default 5/5) until a fixed point.",
    ))
    registry.add(PreprocessorSpec(
        name="normalize",
        build_sql=lazy("recframe_preprocess.sql:build_normalize_sql"),
        build=lazy("recframe_preprocess.normalize:build_normalize"),
        description="Min-max or z-score scale numeric columns of the interactions, "
        "items or users frame.",
    ))
    registry.add(PreprocessorSpec(
        name="anonymize",
        build_sql=lazy("recframe_preprocess.sql:build_anonymize_sql"),
        build=lazy("recframe_preprocess.anonymize:build_anonymize"),
        description="Replace user ids (items: true also item ids) by HMAC-SHA256 hashes "
        "keyed by the secret in $RECFRAME_ANON_KEY (key_env); the key is never in config.",
    ))
    registry.add(PreprocessorSpec(
        name="k_anonymize",
        build=lazy("recframe_preprocess.kanon:build_k_anonymize"),
        description="Generalize user features (age ranges, zip prefixes, rare categories "
        "suppressed) until every combination holds >= k users (Datafly); records k achieved "
        "and the information lost.",
    ))
