"""Amazon "Video Games" (the SASRec paper's "Games"): ``Video.txt`` in the SASRec format.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, distribute
it with their code (github.com/kang205/SASRec, ``data/Video.txt``): 287,107
``user item`` lines of 31,013 users on 23,715 items, each user's lines in time
order. There is no licence that lets recframe redistribute it, so nothing is
downloaded unless the user names a ``url`` (and allows ``download``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs

from recframe.api import DataError, Dataset

from .config import check_keys, opt
from .download import download_file
from .seq_txt import read_seq_txt

NAME = "amazon-games"
FILE = "Video.txt"
MD5 = "90ee83b589a4b2c2306bc8284214fdf5"
CONFIG_KEYS = ("name", "path", "cache_dir", "download", "url", "timeout", "fields")
_SOURCE = (f"get {FILE} from the SASRec authors' repository "
           f"(https://github.com/kang205/SASRec, data/{FILE}; cite Kang & McAuley, "
           f"\"Self-Attentive Sequential Recommendation\", ICDM 2018)")
_HOW = (f"set `dataset.path=/dir/with/{FILE}` (or the file itself), or put it at "
        f"$RECFRAME_DATA_DIR/{NAME}/{FILE} (e.g. export RECFRAME_DATA_DIR=/data)")


def load_amazon_games(cfg: Any) -> Dataset:
    """Load ``Video.txt`` (see :func:`locate`), md5-verified, as a ``seq_txt`` data set."""
    check_keys(cfg, CONFIG_KEYS)
    path = locate(cfg)
    return read_seq_txt(path, md5=MD5, name=NAME,
                        md5_hint=f" To fix: {_SOURCE}, and {_HOW}.")


def locate(cfg: Any) -> Path:
    """Find ``Video.txt``: ``cfg.path`` (the file or its directory), then
    ``$RECFRAME_DATA_DIR/amazon-games/``, then ``<cache_dir>/amazon-games/``; then,
    only with ``cfg.download`` true and ``cfg.url`` set, download it into the cache."""
    path = opt(cfg, "path")
    if path:
        given = Path(str(path)).expanduser().resolve()
        candidate = given / FILE if given.is_dir() else given
        if candidate.is_file():
            return candidate
        raise DataError(
            f"dataset.path={str(path)!r}: {candidate} not found. Point `dataset.path` at "
            f"{FILE} or the directory holding it, or unset it to use $RECFRAME_DATA_DIR. "
            f"To get the file: {_SOURCE}.")
    looked = ["`dataset.path` (not set)"]
    env = os.environ.get("RECFRAME_DATA_DIR")
    if env:
        candidate = Path(env).expanduser().resolve() / NAME / FILE
        if candidate.is_file():
            return candidate
        looked.append(f"{candidate} ($RECFRAME_DATA_DIR/{NAME}/{FILE})")
    else:
        looked.append(f"$RECFRAME_DATA_DIR/{NAME}/{FILE} ($RECFRAME_DATA_DIR is not set)")
    cache_root = opt(cfg, "cache_dir") or platformdirs.user_cache_dir("recframe")
    cached = Path(str(cache_root)).expanduser().resolve() / NAME / FILE
    if cached.is_file():
        return cached
    looked.append(f"{cached} (cache directory; `dataset.cache_dir`)")
    places = "".join(f"\n  - {p}" for p in looked)
    url = opt(cfg, "url")
    if url and bool(opt(cfg, "download", False)):
        hint = f" Looked in:{places}\nOr {_SOURCE}, and {_HOW}."
        return download_file(str(url), cached, MD5, timeout=float(opt(cfg, "timeout", 60.0)),
                             manual_hint=hint)
    why = ("`dataset.url` is set but `dataset.download` is false: set "
           "`dataset.download=true` to download it" if url else
           "recframe does not download it, as the authors' files carry no licence that "
           "allows redistribution; for a copy you may use, set `dataset.url=<url> "
           "dataset.download=true` (md5-checked)")
    raise DataError(
        f"Amazon Games ({FILE}) not found. Looked in:{places}\n"
        f"To fix: {_SOURCE}, and {_HOW}. ({why}.)")
