"""Sequences in the SASRec text format: one ``user item`` pair per line.

Lines are grouped by user, each user's lines in time order, with no timestamps and
no ratings (every line is a positive, implicit interaction). Since the order is
the only time there is, each interaction gets a synthetic ``timestamp``: its
position among its user's lines (0, 1, 2, ...). ``meta["timestamp_kind"] =
"order"`` records that those are positions, not seconds, and ``meta["implicit"]``
that every row is a positive (``binarize`` then keeps every row).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import (
    ITEM,
    TIMESTAMP,
    USER,
    ConfigError,
    DataError,
    Dataset,
    positions_in_groups,
    stable_argsort,
)

from .config import check_keys, existing_file, opt, require
from .fingerprint import combine, md5_file
from .tabular import malformed_message, parse_ids

NAME = "seq_txt"
CONFIG_KEYS = ("name", "path", "md5", "encoding", "fields")
VERSION = 1
#: ``Dataset.meta["timestamp_kind"]`` of data whose timestamps are positions, not times
ORDER = "order"


def load_seq_txt(cfg: Any) -> Dataset:
    """Load ``cfg.path`` (``user item`` per line); ``cfg.md5``, when set, is verified."""
    check_keys(cfg, CONFIG_KEYS)
    path = existing_file(require(cfg, "path", "the `user item` text file"), "dataset.path")
    return read_seq_txt(path, md5=check_md5(opt(cfg, "md5")),
                        encoding=str(opt(cfg, "encoding", "utf-8")), name=path.stem)


def read_seq_txt(path: Path, *, md5: str | None = None, encoding: str = "utf-8",
                 name: str = NAME, md5_hint: str = "") -> Dataset:
    """Read and check a SASRec-format file into a :class:`Dataset`.

    ``md5`` (hex digest) is compared with the file's; a mismatch is a
    :class:`DataError` (``md5_hint`` is appended to it, e.g. where to get the file).
    """
    path = Path(path)
    digest = md5_file(path)
    if md5 is not None and digest != md5.strip().lower():
        raise DataError(
            f"{path}: checksum mismatch (md5 {digest}, expected {md5}): the file is "
            f"corrupt, truncated or not the expected version. Get the file again, or "
            f"set `dataset.md5=null` to skip the check.{md5_hint}")
    interactions = read_pairs(path, encoding=encoding)
    return Dataset(
        interactions=interactions, name=name, source=str(path),
        meta={
            "fingerprint": combine({path.name: digest}, {"loader": NAME, "version": VERSION}),
            "files": {path.name: digest},
            "verified": md5 is not None,
            "timestamp_kind": ORDER,
            "implicit": True,
        },
    )


def read_pairs(path: Path, *, encoding: str = "utf-8") -> pd.DataFrame:
    """``user_id``, ``item_id`` (int64 when every id is an integer, else strings) and
    ``timestamp`` (position within the user's lines), in file order."""
    raw = _read(path, encoding)
    if len(raw) == 0:
        raise DataError(f"{path}: the file holds no `user item` lines.")
    users = parse_ids(raw[0], path=path, column="1 (user)", role="user id")
    items = parse_ids(raw[1], path=path, column="2 (item)", role="item id")
    codes, _ = pd.factorize(users)
    out = pd.DataFrame({
        USER: users.to_numpy(), ITEM: items.to_numpy(),
        TIMESTAMP: positions(codes),
    })
    return out


def _read(path: Path, encoding: str) -> pd.DataFrame:
    """Two string columns indexed by 1-based line number (blank lines dropped);
    a :class:`DataError` naming the line of the first record without exactly 2 fields."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=r"\s+", header=None, dtype=str, engine="c", encoding=encoding,
                keep_default_na=False, na_values=[""], skip_blank_lines=False,
                index_col=False, comment=None,
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except pd.errors.ParserError as err:
        raise DataError(malformed_message(path, err).replace(
            "check dataset.sep.", "each line must be `user item` (2 fields, whitespace "
            "separated).")) from None
    except UnicodeError as err:
        raise DataError(f"{path}: cannot be decoded as {encoding} ({err}); set "
                        f"dataset.encoding (e.g. latin-1).") from None
    except ValueError as err:
        raise DataError(f"{path}: cannot parse the file: {err}") from None
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
    frame = frame[frame.notna().any(axis=1)]
    present = frame.notna().to_numpy()
    counts = present.sum(axis=1)
    bad = counts != 2
    if frame.shape[1] < 2 or bad.any():
        i = int(np.argmax(bad)) if bad.any() else 0
        line = int(frame.index[i])
        fields = [str(v) for v in frame.iloc[i].dropna()]
        raise DataError(
            f"{path}: line {line}: expected 2 fields `user item` (whitespace separated), "
            f"saw {len(fields)}: {' '.join(fields)!r}. Fix or remove that line.")
    return frame


def positions(codes: np.ndarray) -> np.ndarray:
    """0-based position of each row among the earlier rows of the same code (int64)."""
    order = stable_argsort(codes)
    pos = np.empty(len(codes), dtype=np.int64)
    pos[order] = positions_in_groups(codes[order])
    return pos


def check_md5(value: Any, key: str = "dataset.md5") -> str | None:
    """A 32-hex-digit md5 from config, or None; a :class:`ConfigError` otherwise."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"`{key}` must be an md5 hex digest (32 hex digits) or null, "
                          f"got {value!r}.")
    return text
