"""A stand-alone CTR export of MovieLens-100K for FuxiCTR's runner (no recframe involved).

    python export_ml100k.py ML100K_DIR OUT_DIR [--seed 0]

Writes ``OUT_DIR/{train,valid,test}.csv`` (a random 80/10/10 split of the
100,000 ratings, one row per rating) and ``OUT_DIR/fields.json`` (the field list
``run_fuxictr.py`` reads). Columns:

- ``label``: 1 if rating >= 4 else 0;
- categorical (strings): ``user_id``, ``item_id``, ``gender``, ``occupation``,
  ``zip_prefix`` (first ``--zip-digits`` characters of the zip code);
- numeric: ``age``, ``release_year`` (empty when the release date is unknown);
- multi-valued: ``genres``, the movie's genre names joined by ``^``.

``fuxictr_compare.py`` exports recframe's own split instead; this file lets the
FuxiCTR side be run and tested on its own (``pandas`` only, so it runs in
either environment).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABEL = "label"
SEP = "^"
#: the fields of the export, in FuxiCTR's ``feature_cols`` vocabulary (type: categorical,
#: numeric, sequence); the same list ``fuxictr_compare.py`` writes for recframe's split
FIELDS: list[dict[str, Any]] = [
    {"name": "user_id", "type": "categorical"},
    {"name": "item_id", "type": "categorical"},
    {"name": "gender", "type": "categorical"},
    {"name": "occupation", "type": "categorical"},
    {"name": "zip_prefix", "type": "categorical"},
    {"name": "age", "type": "numeric"},
    {"name": "release_year", "type": "numeric"},
    {"name": "genres", "type": "sequence", "splitter": SEP},
]


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")


def ctr_frame(directory: Path, zip_digits: int = 1) -> pd.DataFrame:
    """One row per rating of ``directory`` (GroupLens layout) with the export's columns."""
    ratings = pd.read_csv(directory / "u.data", sep="\t", header=None,
                          names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(directory / "u.user", sep="|", header=None,
                        names=["user_id", "age", "gender", "occupation", "zip"])
    genre_names = pd.read_csv(directory / "u.genre", sep="|", header=None,
                              names=["genre", "index"]).sort_values("index")["genre"]
    genres = [_slug(g) for g in genre_names]
    items = pd.read_csv(directory / "u.item", sep="|", header=None, encoding="latin-1",
                        names=["item_id", "title", "release", "video", "url", *genres])
    year = pd.to_datetime(items["release"], format="%d-%b-%Y", errors="coerce").dt.year
    flags = items[genres].to_numpy().astype(bool)
    names = np.array(genres, dtype=object)
    items_out = pd.DataFrame({
        "item_id": items["item_id"],
        "release_year": year.astype("Float64"),
        "genres": [SEP.join(names[row]) for row in flags],  # 1,682 items: once per item
    })
    users_out = pd.DataFrame({
        "user_id": users["user_id"], "age": users["age"].astype(float),
        "gender": users["gender"], "occupation": users["occupation"],
        "zip_prefix": users["zip"].astype(str).str[:zip_digits],
    })
    frame = ratings.merge(users_out, on="user_id", how="left").merge(items_out, on="item_id",
                                                                     how="left")
    frame[LABEL] = (frame["rating"] >= 4).astype(int)
    return frame[[LABEL, *(f["name"] for f in FIELDS)]]


def write_split(frame: pd.DataFrame, out: Path, seed: int = 0,
                fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, int]:
    """A random train/valid/test split of the rows, written as CSV files."""
    out.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(frame))
    n_train = int(round(fractions[0] * len(frame)))
    n_valid = int(round(fractions[1] * len(frame)))
    parts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
             "test": order[n_train + n_valid:]}
    for part, rows in parts.items():
        frame.iloc[np.sort(rows)].to_csv(out / f"{part}.csv", index=False)
    (out / "fields.json").write_text(json.dumps({"label": LABEL, "fields": FIELDS}, indent=2))
    return {f"n_{part}": len(rows) for part, rows in parts.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ml100k", type=Path, help="folder with u.data, u.user, u.item, u.genre")
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zip-digits", type=int, default=1)
    args = p.parse_args()
    print(write_split(ctr_frame(args.ml100k, args.zip_digits), args.out, args.seed))


if __name__ == "__main__":
    main()
