"""MovieLens 100K in its original GroupLens layout (u.data, u.item, u.user, u.genre)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import platformdirs

from recframe.api import ITEM, RATING, TIMESTAMP, USER, DataError, Dataset

from .config import check_keys, opt
from .download import download_and_extract, has_files
from .fingerprint import combine, file_digests
from .tabular import first_bad, parse_ids, parse_numeric, read_delimited

NAME = "ml-100k"
DEFAULT_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
CHECKSUMS = {
    "u.data": "6e47046882bad158b0efbb84cd5cb987",
    "u.item": "c9e7f390115d79079537301d5204f3f7",
    "u.user": "1b53539edc13caad0282c8500608a319",
}
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
CONFIG_KEYS = ("name", "path", "cache_dir", "download", "url", "timeout")
_HOW = ("set `dataset.path=/dir/with/u.data`, or put the data at "
        "$RECFRAME_DATA_DIR/ml-100k (e.g. export RECFRAME_DATA_DIR=/data)")


def load_ml100k(cfg: Any) -> Dataset:
    """Load MovieLens 100K: 100,000 ratings of 943 users on 1,682 movies.

    ``cfg`` keys: ``path`` (directory with u.data, u.item, u.user), ``cache_dir``,
    ``download`` (default true), ``url``, ``timeout`` (seconds). See :func:`locate`.
    """
    check_keys(cfg, CONFIG_KEYS)
    directory = locate(cfg)
    return read_ml100k(directory)


def locate(cfg: Any) -> Path:
    """Find the ml-100k directory, downloading it into the cache when allowed.

    Order: ``cfg.path``; ``$RECFRAME_DATA_DIR/ml-100k``;
    ``<cache_dir>/ml-100k`` (``cfg.cache_dir`` or the user cache directory);
    then, if ``cfg.download`` (default true), ``cfg.url`` is downloaded there.
    """
    required = list(CHECKSUMS)
    path = opt(cfg, "path")
    if path:
        directory = Path(str(path)).expanduser().resolve()
        if has_files(directory, required):
            return directory
        missing = [n for n in required if not (directory / n).is_file()]
        raise DataError(
            f"dataset.path={str(path)!r}: {directory} is not an ml-100k directory "
            f"(missing {', '.join(missing)}). Point `dataset.path` at the unzipped "
            f"ml-100k folder, or unset it to use $RECFRAME_DATA_DIR or the download."
        )
    looked = []
    env = os.environ.get("RECFRAME_DATA_DIR")
    if env:
        directory = Path(env).expanduser().resolve() / NAME
        if has_files(directory, required):
            return directory
        looked.append(f"{directory} ($RECFRAME_DATA_DIR/{NAME})")
    else:
        looked.append("$RECFRAME_DATA_DIR/ml-100k ($RECFRAME_DATA_DIR is not set)")
    cache_root = opt(cfg, "cache_dir") or platformdirs.user_cache_dir("recframe")
    cache = Path(str(cache_root)).expanduser().resolve() / NAME
    if has_files(cache, required):
        return cache
    looked.append(f"{cache} (cache directory; `dataset.cache_dir`)")
    looked.insert(0, "`dataset.path` (not set)")
    places = "".join(f"\n  - {p}" for p in looked)
    if bool(opt(cfg, "download", True)):
        url = str(opt(cfg, "url", DEFAULT_URL))
        hint = f" Looked in:{places}\nOr download {url} yourself, unzip it, and {_HOW}."
        return download_and_extract(url, cache, CHECKSUMS,
                                    timeout=float(opt(cfg, "timeout", 60.0)), manual_hint=hint)
    raise DataError(
        f"MovieLens 100K not found and downloading is disabled (dataset.download=false). "
        f"Looked in:{places}\nTo fix: {_HOW}, or allow `dataset.download=true`."
    )


def genre_column(name: str) -> str:
    """``"Children's"`` -> ``"genre_childrens"``, ``"Film-Noir"`` -> ``"genre_film_noir"``."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")
    return f"genre_{slug}"


def read_ml100k(directory: Path) -> Dataset:
    """Read the GroupLens files of ``directory`` into a :class:`Dataset`."""
    directory = Path(directory)
    interactions = read_ratings(directory / "u.data")
    genres = read_genres(directory / "u.genre")
    items = read_items(directory / "u.item", genres)
    users = read_users(directory / "u.user")
    files = [directory / n for n in CHECKSUMS]
    if (directory / "u.genre").is_file():
        files.append(directory / "u.genre")
    digests = file_digests(files)
    return Dataset(
        interactions=interactions, items=items, users=users, name=NAME,
        source=str(directory),
        meta={
            "fingerprint": combine(digests),
            "files": digests,
            "verified": all(digests[n] == md5 for n, md5 in CHECKSUMS.items()),
            "genres": [genre_column(g) for g in genres],
        },
    )


def read_ratings(path: Path) -> pd.DataFrame:
    """u.data: tab-separated ``user item rating timestamp``."""
    raw = read_delimited(path, sep="\t", header=False, names=[USER, ITEM, RATING, TIMESTAMP])
    out = pd.DataFrame({
        USER: parse_numeric(raw[USER], path=path, column=USER, role="user id"),
        ITEM: parse_numeric(raw[ITEM], path=path, column=ITEM, role="item id"),
        RATING: parse_numeric(raw[RATING], path=path, column=RATING, role="rating"),
        TIMESTAMP: parse_numeric(raw[TIMESTAMP], path=path, column=TIMESTAMP,
                                 role="timestamp"),
    })
    _check_int(out, [USER, ITEM, TIMESTAMP], path)
    out[RATING] = out[RATING].astype("float64")
    return out.reset_index(drop=True)


def read_genres(path: Path) -> tuple[str, ...]:
    """u.genre (``name|index``), or the standard 19 genres when the file is absent."""
    if not path.is_file():
        return GENRES
    raw = read_delimited(path, sep="|", header=False, encoding="latin-1",
                         names=["genre", "index"])
    index = parse_numeric(raw["index"], path=path, column="index", role="genre index")
    return tuple(raw["genre"].iloc[index.argsort().to_numpy()].astype(str))


def read_items(path: Path, genres: tuple[str, ...]) -> pd.DataFrame:
    """u.item (latin-1): ``id|title|release date|video release date|IMDb URL|genre flags``."""
    flags = [genre_column(g) for g in genres]
    names = [ITEM, "title", "release_date", "video_release_date", "imdb_url", *flags]
    raw = read_delimited(path, sep="|", header=False, encoding="latin-1", names=names)
    items = pd.DataFrame({
        "title": raw["title"].astype("str"),
        "release_date": pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce"),
    }, index=raw.index)
    for flag in flags:
        items[flag] = parse_numeric(raw[flag], path=path, column=flag, role="genre flag")
    _check_int(items, flags, path)
    items.index = pd.Index(
        parse_ids(raw[ITEM], path=path, column=ITEM, role="item id").to_numpy(), name=ITEM)
    return items


def read_users(path: Path) -> pd.DataFrame:
    """u.user: ``id|age|gender|occupation|zip``."""
    raw = read_delimited(path, sep="|", header=False,
                         names=[USER, "age", "gender", "occupation", "zip"])
    users = pd.DataFrame({
        "age": parse_numeric(raw["age"], path=path, column="age", role="age"),
        "gender": raw["gender"].astype("str"),
        "occupation": raw["occupation"].astype("str"),
        "zip": raw["zip"].astype("str"),
    }, index=raw.index)
    _check_int(users, ["age"], path)
    users.index = pd.Index(
        parse_ids(raw[USER], path=path, column=USER, role="user id").to_numpy(), name=USER)
    return users


def _check_int(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    """Frames indexed by line number: name the first line holding a fractional value."""
    for col in columns:
        if not pd.api.types.is_integer_dtype(frame[col]):
            fractional = frame[col] % 1 != 0
            line = first_bad(fractional)
            raise DataError(f"{path}: line {line}: column {col!r} must hold integers, "
                            f"got {frame[col].loc[line]!r}.")
