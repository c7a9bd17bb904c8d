"""MovieLens 100K as click-through data: every rating is an impression.

``label = 1`` when the rating is at least ``threshold`` (default 4: 55% of the
ratings), else ``0``: ratings of 4-5 read as clicks, the common way to turn explicit
feedback into click-through data.
The rating itself is dropped: it determines the label, so a model that saw it
would read the answer.

Fields (``Dataset.meta["fields"]``; ``user_id``/``item_id`` are added by recframe):

=============  =================  =======  ==========================================
name           kind               owner    from
=============  =================  =======  ==========================================
age            numeric            user     u.user age; ``age_buckets`` quantile buckets
gender         categorical        user     u.user (M/F)
occupation     categorical        user     u.user (21 occupations)
zip_prefix     categorical        user     first ``zip_prefix`` characters of the zip
genres         multi_categorical  item     the 19 genre flags of u.item, ``"A|B"``
release_year   numeric            item     year of u.item's release date (1 missing)
title          text               item     u.item title, e.g. ``"Toy Story (1995)"``
hist           sequence           context  the user's earlier positives (shares item_id)
=============  =================  =======  ==========================================

Timestamps order the rows (``meta["ordered"]`` is not set). u.data has many ties:
about half the ratings share their user's second with another rating.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, LABEL, RATING, TIMESTAMP, USER, ConfigError, Dataset

from .config import check_keys, opt
from .ctr_fields import validate_fields
from .fingerprint import combine, file_digests
from .movielens import (
    CHECKSUMS,
    genre_column,
    locate,
    read_genres,
    read_items,
    read_ratings,
    read_users,
)

NAME = "ml-100k-ctr"
VERSION = 1
LOCATE_KEYS = ("path", "cache_dir", "download", "url", "timeout")
CONFIG_KEYS = ("name", *LOCATE_KEYS, "threshold", "zip_prefix", "age_buckets", "hist_len",
               "fields")


def load_ml100k_ctr(cfg: Any) -> Dataset:
    """Load MovieLens 100K as 100,000 labeled impressions (see the module docstring).

    ``cfg`` keys: those of ``ml-100k`` (``path``, ``cache_dir``, ``download``, ``url``,
    ``timeout``: where the GroupLens files are, see
    :func:`recframe_datasets.movielens.locate`), ``threshold`` (label = rating >=
    threshold, default 4), ``zip_prefix`` (characters of the zip code kept, default 2),
    ``age_buckets`` (quantile buckets of age, default 8; 0 = a standardised number),
    ``hist_len`` (max_len of the ``hist`` sequence field, default 20; 0 = no such
    field). ``fields`` (overrides of the declarations) is applied by recframe on top
    of ``meta["fields"]``, like for every data set.
    """
    check_keys(cfg, CONFIG_KEYS)
    threshold = _number(opt(cfg, "threshold", 4), "threshold")
    zip_prefix = _int(opt(cfg, "zip_prefix", 2), "zip_prefix", 1, 5)
    age_buckets = _int(opt(cfg, "age_buckets", 8), "age_buckets", 0, 100)
    hist_len = _int(opt(cfg, "hist_len", 20), "hist_len", 0, 10_000)
    directory = locate(cfg)
    settings = {"threshold": threshold, "zip_prefix": zip_prefix, "age_buckets": age_buckets,
                "hist_len": hist_len}
    ds = read_ml100k_ctr(directory, **settings)
    ds.meta["fields"] = validate_fields(ds.meta["fields"], interactions=ds.interactions,
                                        users=ds.users, items=ds.items, where=NAME)
    ds.meta["fingerprint"] = combine(ds.meta["files"], {"loader": NAME, "version": VERSION,
                                                        **settings})
    return ds


def read_ml100k_ctr(directory: Path, *, threshold: float = 4, zip_prefix: int = 2,
                    age_buckets: int = 8, hist_len: int = 20) -> Dataset:
    """Read the GroupLens files of ``directory`` as labeled impressions."""
    directory = Path(directory)
    ratings = read_ratings(directory / "u.data")
    label = (ratings[RATING] >= threshold).astype("int64")
    rate = float(label.mean())
    if rate in (0.0, 1.0):
        raise ConfigError(
            f"dataset.threshold={threshold!r} makes every label {int(rate)} (ratings range "
            f"{ratings[RATING].min():g}..{ratings[RATING].max():g}); choose a threshold in "
            f"(min, max], e.g. 4.")
    interactions = pd.DataFrame({USER: ratings[USER], ITEM: ratings[ITEM], LABEL: label,
                                 TIMESTAMP: ratings[TIMESTAMP]})  # rating dropped: it leaks
    genres = read_genres(directory / "u.genre")
    raw_items = read_items(directory / "u.item", genres)
    raw_users = read_users(directory / "u.user")
    items = pd.DataFrame({
        "genres": genre_strings(raw_items, genres),
        "release_year": raw_items["release_date"].dt.year.astype("float64"),
        "title": raw_items["title"],
    }, index=raw_items.index)
    users = pd.DataFrame({
        "age": raw_users["age"],
        "gender": raw_users["gender"],
        "occupation": raw_users["occupation"],
        "zip_prefix": raw_users["zip"].str.strip().str.upper().str[:zip_prefix],
    }, index=raw_users.index)
    files = [directory / n for n in CHECKSUMS]
    if (directory / "u.genre").is_file():
        files.append(directory / "u.genre")
    digests = file_digests(files)
    max_genres = int(raw_items[[genre_column(g) for g in genres]].sum(axis=1).max())
    age: dict[str, Any] = {"name": "age", "kind": "numeric", "owner": "user",
                           "normalize": "standard", "buckets": age_buckets}
    fields: list[dict[str, Any]] = [
        age,
        {"name": "gender", "kind": "categorical", "owner": "user"},
        {"name": "occupation", "kind": "categorical", "owner": "user"},
        {"name": "zip_prefix", "kind": "categorical", "owner": "user"},
        {"name": "genres", "kind": "multi_categorical", "owner": "item", "sep": "|",
         "max_len": max(max_genres, 1), "pooling": "mean"},
        {"name": "release_year", "kind": "numeric", "owner": "item", "normalize": "standard"},
        {"name": "title", "kind": "text", "owner": "item"},
    ]
    if hist_len:
        fields.append({"name": "hist", "kind": "sequence", "owner": "context",
                       "shares": ITEM, "max_len": hist_len})
    return Dataset(
        interactions=interactions, items=items, users=users, name=NAME, source=str(directory),
        meta={
            "fingerprint": combine(digests, {"loader": NAME, "version": VERSION,
                                             "threshold": threshold, "zip_prefix": zip_prefix,
                                             "age_buckets": age_buckets, "hist_len": hist_len}),
            "files": digests,
            "verified": all(digests[n] == md5 for n, md5 in CHECKSUMS.items()),
            "fields": fields,
            "label_threshold": threshold,
            "label_rate": rate,
        },
    )


def genre_strings(items: pd.DataFrame, genres: tuple[str, ...]) -> pd.Series:
    """The genre flags of each movie as one ``"Action|Comedy"`` string (u.genre order)."""
    flags = items[[genre_column(g) for g in genres]].to_numpy() > 0
    names = np.array(genres, dtype=object)
    # one "|"-joined string per row, built column by column (19 vectorized steps)
    out = pd.Series([""] * len(items), index=items.index, dtype="object")
    for j, name in enumerate(names):
        has = flags[:, j]
        out[has] = np.where(out[has] == "", name, out[has] + "|" + name)
    out[out == ""] = None
    return out.astype("str")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigError(f"`dataset.{key}` must be a number, got {value!r}.")
    return float(value) if not float(value).is_integer() else int(value)


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"`dataset.{key}` must be an integer in [{low}, {high}], "
                          f"got {value!r}.")
    return int(value)

