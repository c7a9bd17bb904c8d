"""Which feature blocks a dataset offers a model: one helper for every feature-aware plugin.

A model that "uses whatever the data has" (a content model, a hybrid
factorization, a click model) asks :func:`feature_blocks` instead of assuming
a column layout, so the same default works on MovieLens-100K (genre flags,
release date, title), on MovieLens-latest (a title and ``Action|Comedy``
genres) or on a log with no item features at all. The kinds are those of
:mod:`recframe.data.fields`:

``numeric``
    numeric columns of the feature frame (``RecData.item_features[name]``).
``categorical``
    single-valued categorical columns (codes in ``<name>__code``, 0 = missing).
``multi_categorical``
    multi-valued fields (``RecData.multi_hot(owner)``; only when the fields
    were fitted, i.e. the model's spec ``needs`` ``"fields"``).
``text``
    free-text columns (titles, descriptions; raw strings in the frame).
"""

from __future__ import annotations

from recframe.data.encode import DataInfo
from recframe.data.types import ITEM, USER

BLOCK_KINDS: tuple[str, ...] = ("numeric", "categorical", "multi_categorical", "text")


def feature_blocks(info: DataInfo, owner: str = "item") -> dict[str, tuple[str, ...]]:
    """The ``owner``'s (``item``/``user``) feature columns by kind, in the order of
    :data:`BLOCK_KINDS`; kinds the data lacks are left out, so an empty mapping means
    the data has no feature of that owner (ids only)."""
    if owner not in ("item", "user"):
        raise ValueError(f"feature blocks exist for 'item' and 'user', not {owner!r}")
    specs = info.item_features if owner == "item" else info.user_features
    ids = {ITEM, USER}
    found: dict[str, list[str]] = {kind: [] for kind in BLOCK_KINDS}
    for spec in specs:
        if spec.kind in found and spec.name not in ids:
            found[spec.kind].append(spec.name)
    found["multi_categorical"] = [f.name for f in info.fields
                                  if f.owner == owner and f.kind == "multi_categorical"]
    return {kind: tuple(names) for kind, names in found.items() if names}


def describe_blocks(blocks: dict[str, tuple[str, ...]]) -> str:
    """``numeric (3 columns), multi_categorical (genres)``, or ``none (ids only)``: for logs."""
    if not blocks:
        return "none (ids only)"
    return ", ".join(f"{kind} ({', '.join(names) if len(names) <= 4 else f'{len(names)} columns'})"
                     for kind, names in blocks.items())
