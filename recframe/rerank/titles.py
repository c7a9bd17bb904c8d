"""Item titles for prompts, from the dataset's item text features.

The title column is ``rerank.title_column`` or, with ``auto``, the item text
column named ``title`` (or ``name``), else the first item text column (the
columns ``recframe.api.feature_blocks`` calls ``text``, as the content model
reads them). Items without a title (no such column, or a missing value) are
shown as ``item <raw id>``; how many candidates and history items that hit is
recorded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recframe.data.blocks import feature_blocks
from recframe.errors import ConfigError

PREFERRED = ("title", "name", "movie_title")


def title_column(data: object, requested: str) -> str | None:
    """The item column titles come from, or None (every item shown by its id)."""
    info = data.info  # type: ignore[attr-defined]
    texts = list(feature_blocks(info, "item").get("text", ()))
    if requested != "auto":
        if requested not in texts:
            raise ConfigError(
                f"rerank.title_column={requested!r} is not an item text column of dataset "
                f"{info.name!r} (text columns: {texts or 'none'}); set it to one of them "
                f"or to auto.")
        return requested
    for name in PREFERRED:
        if name in texts:
            return name
    return texts[0] if texts else None


def item_titles(data: object, requested: str = "auto") -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(titles, has_title, column)``: one display string per encoded item, whether it
    came from the data, and the column used."""
    ids = np.asarray(data.item_ids).astype(str)  # type: ignore[attr-defined]
    fallback = np.char.add("item ", ids).astype(object)
    column = title_column(data, requested)
    frame = getattr(data, "item_features", None)
    if column is None or frame is None or column not in frame:
        return fallback, np.zeros(len(ids), dtype=bool), column
    values = pd.Series(frame[column]).reset_index(drop=True)
    text = values.astype("string").str.strip()
    has = (text.notna() & (text.fillna("") != "")).to_numpy(dtype=bool)
    titles = np.where(has, text.fillna("").to_numpy(dtype=object), fallback)
    return titles.astype(object), has, column
