"""Interactions from any CSV/TSV or Parquet file, mapped to the canonical columns."""

from __future__ import annotations

import codecs
import inspect
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from recframe.api import (
    ITEM,
    LABEL,
    RATING,
    TIMESTAMP,
    USER,
    ConfigError,
    DataError,
    Dataset,
)

from .config import check_keys, existing_file, opt, plain, require, suggest
from .fingerprint import combine, file_digests
from .tabular import (
    guess_delimiter,
    infer_column,
    parse_ids,
    parse_numeric,
    read_delimited,
    read_header,
)

CONFIG_KEYS = ("name", "path", "format", "sep", "header", "names", "encoding", "columns",
               "item_features", "user_features", "fields")
FEATURE_KEYS = ("path", "key", "format", "sep", "header", "names", "encoding")
DEFAULT_COLUMNS = {USER: USER, ITEM: ITEM, RATING: RATING, TIMESTAMP: TIMESTAMP, LABEL: None}
REQUIRED = (USER, ITEM)
FORMATS = {".csv": "csv", ".txt": "csv", ".dat": "csv", ".tsv": "tsv", ".tab": "tsv",
           ".parquet": "parquet", ".pq": "parquet"}


def load_csv(cfg: Any) -> Dataset:
    """Load interactions from ``cfg.path`` (CSV, TSV or Parquet).

    ``cfg.columns`` maps ``user_id``/``item_id`` (required) and ``rating``/``timestamp``
    (null = absent) to file columns (names, or 0-based positions when
    ``header: false`` and no ``names``). ``item_features``/``user_features`` name
    feature files ``{path, key}`` whose ``key`` column holds the id.
    Ids keep their type: integer columns stay ints, anything else stays strings.
    """
    check_keys(cfg, CONFIG_KEYS)
    path = existing_file(require(cfg, "path", "the interactions file"), "dataset.path")
    mapping = column_mapping(opt(cfg, "columns"))
    context = _declared_context_columns(opt(cfg, "fields"), mapping)
    table = read_table(path, cfg, "dataset", needed=mapping, only_needed=True,
                       optional=context)
    interactions = to_interactions(table, mapping, path, unit=table.attrs["unit"])
    for column in context:  # declared context fields found in the interactions file
        if column in table.columns:
            interactions[column] = table[column].to_numpy()
    files = [path]
    features: dict[str, pd.DataFrame | None] = {ITEM: None, USER: None}
    for id_col, key in ((ITEM, "item_features"), (USER, "user_features")):
        spec = opt(cfg, key)
        if spec:
            features[id_col], fpath = load_features(
                spec, id_col, key, base_dir=path.parent, ids=interactions[id_col])
            files.append(fpath)
    digests = file_digests(files)
    return Dataset(
        interactions=interactions, items=features[ITEM], users=features[USER], name=path.stem,
        source=str(path),
        meta={"fingerprint": combine(digests, {"columns": mapping}), "files": digests,
              "format": table.attrs["format"]},
    )


def _declared_context_columns(fields: Any, mapping: dict[str, Any]) -> list[str]:
    """Columns named by ``dataset.fields`` (their ``column``, else their name) that are
    not canonical: kept from the interactions file when it has them (context fields
    of each row, e.g. the hour of an impression); the core checks the rest."""
    fields = plain(fields)
    if fields is None:
        return []
    items = (list(fields.items()) if isinstance(fields, dict)
             else [(d.get("name"), d) for d in fields if isinstance(d, dict)]
             if isinstance(fields, list) else [])
    used = {str(v) for v in mapping.values()}
    out = []
    for name, decl in items:
        column = str((decl or {}).get("column") or name)
        if column not in used and column not in out:
            out.append(column)
    return out


def column_mapping(columns: Any) -> dict[str, Any]:
    """Validate ``dataset.columns``: canonical name -> file column (or None)."""
    given = plain(columns) if columns is not None else {}
    if not isinstance(given, dict):
        raise ConfigError(f"`dataset.columns` must be a mapping like {DEFAULT_COLUMNS}, "
                          f"got {given!r}")
    check_keys(given, DEFAULT_COLUMNS, "dataset.columns")
    mapping = {**DEFAULT_COLUMNS, **given}
    for key in REQUIRED:
        if mapping[key] is None or mapping[key] == "":
            raise ConfigError(f"`dataset.columns.{key}` must name the file column holding "
                              f"the {key.replace('_', ' ')}; it cannot be null.")
    mapping = {k: v for k, v in mapping.items() if v is not None and v != ""}
    targets = Counter(map(str, mapping.values()))
    dup = [t for t, n in targets.items() if n > 1]
    if dup:
        raise ConfigError(f"`dataset.columns` maps several canonical columns to {dup[0]!r}: "
                          f"{mapping}")
    return mapping


def detect_format(path: Path, fmt: Any, key: str) -> str:
    """``csv``, ``tsv`` or ``parquet``: ``fmt`` if set, else from the file suffix."""
    if fmt:
        fmt = str(fmt).lower()
        if fmt not in {"csv", "tsv", "parquet"}:
            raise ConfigError(f"`{key}.format` must be csv, tsv or parquet, got {fmt!r}."
                              f"{suggest(fmt, ['csv', 'tsv', 'parquet'])}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in {".gz", ".bz2", ".zip",
                                                                      ".xz", ".zst"}]
    return FORMATS.get(suffixes[-1] if suffixes else "", "csv")


def read_table(path: Path, cfg: Any, key: str, needed: dict[str, Any] | None = None,
               only_needed: bool = False, optional: list[str] | None = None) -> pd.DataFrame:
    """Read a whole table; index = line number (text) or 1-based row (Parquet).

    ``needed`` (canonical -> column) is checked against the header before the
    body is read; with ``only_needed`` a Parquet file is read for those columns
    only (columnar: the others are never decoded). ``attrs`` holds ``format``
    and ``unit`` (``line``/``row``).
    """
    fmt = detect_format(path, opt(cfg, "format"), key)
    if fmt == "parquet":
        columns = _parquet_columns(path)
        _check_columns(path, columns, needed or {}, key, sep=None)
        try:
            wanted = ([str(c) for c in needed.values()]
                      + [c for c in optional or [] if c in columns]
                      if needed and only_needed else None)
            frame = pd.read_parquet(path, columns=wanted, **_PARQUET_OPTIONS)
        except Exception as err:  # pyarrow raises several types for corrupt input
            raise DataError(f"{path}: cannot read it as Parquet ({type(err).__name__}: "
                            f"{err}).") from None
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
        unit = "row"
    else:
        sep = check_sep(str(opt(cfg, "sep") or ("\t" if fmt == "tsv" else ",")), key, path)
        header = bool(opt(cfg, "header", True))
        encoding = check_encoding(str(opt(cfg, "encoding", "utf-8")), key, path)
        names = plain(opt(cfg, "names"))
        first = read_header(path, sep, encoding)
        if names is not None:
            if isinstance(names, str) or not isinstance(names, list):
                raise ConfigError(f"`{key}.names` must be a list of column names, "
                                  f"got {names!r}")
            names = [str(n) for n in names]
            dup = [n for n, c in Counter(names).items() if c > 1]
            if dup:
                raise ConfigError(f"`{key}.names` repeats {', '.join(map(repr, dup))}; "
                                  f"each column name must be unique.")
            columns = names
        elif header:
            columns = first
        else:
            columns = list(range(len(first)))
        if header and names is None:
            _check_duplicates(path, columns)
        _check_columns(path, columns, needed or {}, key, sep=sep, header=header,
                       first_line=first)
        frame = read_delimited(path, sep=sep, header=header, encoding=encoding, names=names)
        if not header and names is None:
            frame.columns = list(range(frame.shape[1]))
        unit = "line"
    frame.attrs.update(format=fmt, unit=unit)
    return frame


def _parquet_options() -> dict[str, Any]:
    """Keyword arguments of ``pd.read_parquet`` that avoid copies where pandas has them:
    one block per column, Arrow buffers released while converting (pandas >= 3)."""
    if "to_pandas_kwargs" in inspect.signature(pd.read_parquet).parameters:
        return {"to_pandas_kwargs": {"split_blocks": True, "self_destruct": True}}
    return {}


_PARQUET_OPTIONS = _parquet_options()


def check_sep(sep: str, key: str, path: Path) -> str:
    """A usable field separator: one character, or a regex that cannot match nothing."""
    if any(c in sep for c in "\r\n") or sep == '"':
        raise ConfigError(f"{path}: `{key}.sep` cannot be a quote or a line break, "
                          f"got {sep!r}.")
    if len(sep) > 1:
        try:
            pattern = re.compile(sep)
        except re.error as err:
            raise ConfigError(f"{path}: `{key}.sep`={sep!r}: a separator of several "
                              f"characters is a regular expression, and this one is invalid "
                              f"({err}); escape "
                              f"special characters, e.g. {re.escape(sep)!r}.") from None
        if pattern.fullmatch(""):
            raise ConfigError(f"{path}: `{key}.sep`={sep!r}: as a regular expression it "
                              f"matches the empty string; escape special characters, e.g. "
                              f"{re.escape(sep)!r}.")
    return sep


def check_encoding(encoding: str, key: str, path: Path) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"{path}: `{key}.encoding`: unknown text encoding {encoding!r}; "
                          f"use e.g. utf-8 or latin-1.") from None
    return encoding


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        names = list(pq.read_schema(path).names)
    except Exception as err:  # pyarrow raises several types for non-Parquet input
        raise DataError(f"{path}: cannot read it as Parquet ({err}); set dataset.format "
                        f"if the suffix is misleading.") from None
    _check_duplicates(path, names)
    return names


def _check_duplicates(path: Path, columns: list[Any]) -> None:
    dup = [c for c, n in Counter(columns).items() if n > 1]
    if dup:
        raise DataError(f"{path}: duplicate column name(s) in the header: "
                        f"{', '.join(map(repr, dup))}. Rename them so each column is unique.")


def _check_columns(path: Path, columns: list[Any], needed: dict[str, Any], key: str, *,
                   sep: str | None, header: bool = True, first_line: list[str] | None = None
                   ) -> None:
    """Every mapped column exists; otherwise say which, what exists, and the fix."""
    if not columns:
        if path.stat().st_size > 0:
            raise DataError(f"{path}: line 1 is blank; the header (or, with header=false, "
                            f"the first record) must be on line 1. Remove the leading blank "
                            f"lines.")
        raise DataError(f"{path}: the file is empty (no header or first line).")
    if sep is not None and len(columns) == 1 and len(needed) > 1:
        guess = guess_delimiter(str((first_line or columns)[0]))
        seen = f" it looks like {guess}" if guess else ""
        raise DataError(
            f"{path}: file has a single column ({str((first_line or columns)[0])[:60]!r}); "
            f"is the delimiter right? set {key}.sep (now {sep!r});{seen}."
        )
    available = set(columns)
    for canonical, column in needed.items():
        if column in available:
            continue
        if not header and isinstance(column, str) and column.isdigit() and \
                int(column) in available:
            continue
        msg = (f"{path}: column {column!r} (mapped by `{key}.columns.{canonical}`) not found. "
               f"Available columns: {list(columns)}.{suggest(column, columns)}")
        if not header:
            msg += (f" The file has no header ({key}.header=false): map columns by 0-based "
                    f"position, e.g. `{key}.columns.{canonical}=0`, or set `{key}.names`.")
        if canonical in (RATING, TIMESTAMP):
            msg += f" If the file has no {canonical}, set `{key}.columns.{canonical}=null`."
        raise DataError(msg)


def _column(frame: pd.DataFrame, column: Any) -> pd.Series:
    if column not in frame.columns and isinstance(column, str) and column.isdigit():
        column = int(column)
    return frame[column]


def to_interactions(frame: pd.DataFrame, mapping: dict[str, Any], path: Path, unit: str
                    ) -> pd.DataFrame:
    """Select and type the mapped columns: ids as found, rating float64, timestamp numeric.

    The columns are joined side by side (no consolidation into 2-D blocks), so a
    column that needs no conversion is not copied.
    """
    out: dict[str, pd.Series] = {}
    for canonical, column in mapping.items():
        values = _column(frame, column)
        if canonical in REQUIRED:
            out[canonical] = parse_ids(values, path=path, column=str(column),
                                       role=canonical.replace("_", " "), unit=unit)
        elif canonical == RATING:
            out[canonical] = parse_numeric(values, path=path, column=str(column),
                                           role="rating", unit=unit).astype("float64")
        elif canonical == LABEL:  # 0/1 checked (with the row) by the core
            out[canonical] = parse_numeric(values, path=path, column=str(column),
                                           role="label", unit=unit)
        else:
            out[canonical] = _timestamps(values, path, str(column), unit)
    if not out:
        return pd.DataFrame(out).reset_index(drop=True)
    named = []
    for canonical, values in out.items():
        values = values.copy(deep=False)  # a new Series object over the same data
        values.name = canonical
        named.append(values)
    frame = pd.concat(named, axis=1)
    frame.index = pd.RangeIndex(len(frame))
    return frame


def _timestamps(values: pd.Series, path: Path, column: str, unit: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.isna().any():
            raise DataError(f"{path}: {unit} {values.isna().idxmax()}: timestamp column "
                            f"{column!r} is empty.")
        if getattr(values.dt, "tz", None) is not None:  # aware: Unix seconds are UTC
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return (values.astype("datetime64[s]").astype("int64")).rename(values.name)
    return parse_numeric(values, path=path, column=column, role="timestamp", unit=unit,
                         hint=" Convert dates to Unix seconds first.")


def load_features(spec: Any, id_col: str, key: str, *, base_dir: Path, ids: pd.Series
                  ) -> tuple[pd.DataFrame, Path]:
    """A feature file indexed by ``id_col``; its ``key`` column (default ``id_col``)
    holds ids that must match the interaction ids (same type)."""
    if isinstance(spec, str):
        spec = {"path": spec}
    spec = plain(spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"`dataset.{key}` must be a mapping {{path, key}}, got {spec!r}")
    check_keys(spec, FEATURE_KEYS, f"dataset.{key}")
    where = f"dataset.{key}"
    path = existing_file(require(spec, "path", f"the {key.replace('_', ' ')} file", where),
                         f"{where}.path", also_under=base_dir)
    id_column = spec.get("key") or id_col
    table = read_table(path, spec, where, needed={"key": id_column})
    unit = table.attrs["unit"]
    id_values = parse_ids(_column(table, id_column), path=path, column=str(id_column),
                          role=f"{key} key", unit=unit)
    if len(id_values) == 0:
        raise DataError(f"{path}: the {key.replace('_', ' ')} file has no rows below its "
                        f"header; add one row per id, or unset `{where}`.")
    dup = id_values.duplicated()
    if dup.any():
        line = dup.idxmax()
        raise DataError(f"{path}: {unit} {line}: duplicate id {_py(id_values.loc[line])!r} in key "
                        f"column {id_column!r}; each id must appear once.")
    features = table.drop(columns=[_column(table, id_column).name])
    if table.attrs["format"] != "parquet":
        features = features.apply(infer_column)
    features.columns = [str(c) for c in features.columns]
    features.index = pd.Index(id_values.to_numpy(), name=id_col)
    if len(ids) and not features.index.isin(pd.unique(ids)).any():
        raise DataError(
            f"{path}: no id of key column {id_column!r} matches an id in column {id_col!r} of "
            f"the interactions (feature ids {id_values.dtype}, e.g. {_py(id_values.iloc[0])!r}; "
            f"interaction ids {ids.dtype}, e.g. {_py(ids.iloc[0])!r}). Check `{where}.key`, "
            f"and that both files spell ids alike (\"7\" vs \"007\", numbers vs text)."
        )
    return features, path


def _py(value: Any) -> Any:
    """A numpy scalar as the Python value, so messages show 2, not np.int64(2)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def scan_csv(cfg: Any) -> Any:
    """The out-of-core form of :func:`load_csv` (``data.engine=duckdb``): a Parquet file
    with plain column names and no feature files is scanned lazily by the engine
    (:class:`recframe.api.ScanSource`); anything else returns ``None`` and the engine
    loads it with :func:`load_csv` (data that fits in memory). The fingerprint is the one
    :func:`load_csv` records."""
    from recframe.api import ScanSource

    check_keys(cfg, CONFIG_KEYS)
    path = existing_file(require(cfg, "path", "the interactions file"), "dataset.path")
    if detect_format(path, opt(cfg, "format"), "dataset") != "parquet" or any(
            opt(cfg, k) for k in ("item_features", "user_features", "fields")):
        return None
    mapping = column_mapping(opt(cfg, "columns"))
    if not all(isinstance(c, str) for c in mapping.values()) or LABEL in mapping:
        return None
    _check_columns(path, _parquet_columns(path), mapping, "dataset", sep=None)
    digests = file_digests([path])
    return ScanSource(paths=(str(path),), format="parquet", columns=dict(mapping),
                      name=path.stem, meta={"fingerprint": combine(digests, {"columns": mapping}),
                                            "files": digests, "format": "parquet"})
