"""Entry point module of recframe_preprocess: the built-in preprocessing steps.

Each step is one entry of the ``preprocess`` config list, ``{name: <key>, ...params}``;
see the ``build_*`` docstrings for the parameters.
"""

from __future__ import annotations

from typing import Any

from recframe.api import PreprocessorSpec, hookimpl
from recframe_preprocess.anonymize import build_anonymize
from recframe_preprocess.binarize import build_binarize
from recframe_preprocess.clean import build_dedup, build_drop_invalid
from recframe_preprocess.kcore import build_kcore
from recframe_preprocess.normalize import build_normalize


@hookimpl
def recframe_register_preprocessors(registry: Any) -> None:
    registry.add(PreprocessorSpec(
        name="drop_invalid",
        build=build_drop_invalid,
        description="Drop rows with null ids or a null/NaN/inf rating or timestamp.",
    ))
    registry.add(PreprocessorSpec(
        name="dedup",
        build=build_dedup,
        description="One row per (user, item): keep the latest by timestamp, else the last.",
    ))
    registry.add(PreprocessorSpec(
        name="binarize",
        build=build_binarize,
        description="Keep rating >= threshold (default 4.0) as rating 1.0; "
        "keep_negatives=true keeps all rows as 1.0/0.0.",
    ))
    registry.add(PreprocessorSpec(
        name="kcore",
        build=build_kcore,
        description="Iteratively drop users/items with fewer than user_min/item_min "
        "interactions (default 5/5) until a fixed point.",
    ))
    registry.add(PreprocessorSpec(
        name="normalize",
        build=build_normalize,
        description="Min-max or z-score scale numeric columns of the interactions, "
        "items or users frame.",
    ))
    registry.add(PreprocessorSpec(
        name="anonymize",
        build=build_anonymize,
        description="Replace user ids (items: true also item ids) by HMAC-SHA256 hashes "
        "keyed by the secret in $RECFRAME_ANON_KEY (key_env); the key is never in config.",
    ))
