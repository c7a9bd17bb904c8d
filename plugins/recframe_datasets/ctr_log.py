"""Click logs in the Criteo / Avazu layout: one impression per line, a 0/1 label column
and feature columns.

Each listed column becomes a declared field (``Dataset.meta["fields"]``): ``numeric``,
``categorical``, ``multi_categorical`` (``{column: separator}``) or ``text``.
Columns not listed are dropped. Without ``user_column``/``item_column`` (Criteo,
Avazu) every row gets ``user_id = item_id = 0`` and ``meta["id_fields"] = False``:
there are no users or items to rank, only rows to score. With both (a MovieLens-like
log), columns listed in ``user_features``/``item_features`` move to the ``users`` /
``items`` frames (one value per id, checked) and their fields are user/item-owned.

``hour_column`` reads Avazu's ``hour`` (``YYMMDDHH``) into the context fields
``hour_of_day`` (0-23) and ``weekday`` (0 = Monday) and, unless ``timestamp`` names a
column, the row's Unix time (seconds, UTC). ``ordered: true`` records that the file
lists impressions in time order (``meta["ordered"]``), so recframe can split by
position and build sequences without timestamps.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, LABEL, TIMESTAMP, USER, ConfigError, DataError, Dataset

from .config import check_keys, existing_file, opt, plain, suggest
from .csv_loader import _parquet_columns, check_encoding, check_sep, detect_format, read_table
from .ctr_fields import NORMALIZATIONS, RESERVED, str_list, validate_fields
from .fingerprint import combine, file_digests
from .tabular import describe, first_bad, parse_ids, parse_numeric, read_header

log = logging.getLogger(__name__)

NAME = "ctr_log"
VERSION = 1
READ_KEYS = ("format", "sep", "header", "names", "encoding")
CONFIG_KEYS = ("name", "path", *READ_KEYS, "label", "label_threshold", "numeric", "normalize",
               "categorical", "min_count", "multi_categorical", "text", "user_column",
               "item_column", "user_features", "item_features", "timestamp", "hour_column",
               "ordered", "hist_len", "fields")
#: md5 of the DeepCTR sample files (see $RECFRAME_DATA_DIR/README.md), checked by file name
KNOWN_CHECKSUMS = {
    "criteo_sample.txt": "3b73e8dc06d0c13d783fa6aca2f12a23",
    "avazu_sample.txt": "4161073bccda5174c2a11aa7ab16d6fb",
    "movielens_sample.txt": "ab08162b458316ad41823c30ec4c4212",
}
HOUR_FIELDS = ("hour_of_day", "weekday")
#: registry names that are ``ctr_log`` with these defaults (conf/dataset/<name>.yaml repeats
#: them; a key the config sets, even to null, wins). Thresholds of rare values follow
#: AutoInt (Song et al., CIKM 2019): 10 for Criteo, 5 for Avazu.
PRESETS: dict[str, dict[str, Any]] = {
    "criteo": {
        "label": "label", "numeric": [f"I{i}" for i in range(1, 14)], "normalize": "log",
        "categorical": [f"C{i}" for i in range(1, 27)], "min_count": 10, "ordered": True,
    },
    "avazu": {
        "label": "click", "hour_column": "hour", "ordered": True, "min_count": 5,
        "categorical": ["C1", "banner_pos", "site_id", "site_domain", "site_category",
                        "app_id", "app_domain", "app_category", "device_id", "device_ip",
                        "device_model", "device_type", "device_conn_type", "C14", "C15",
                        "C16", "C17", "C18", "C19", "C20", "C21"],
    },
}
_SEP_GUESSES = ("|", ";", ",", " ", "\t")


def load_preset(preset: str, cfg: Any) -> Dataset:
    """``ctr_log`` with the defaults of :data:`PRESETS` ``[preset]`` under ``cfg``."""
    given: dict[str, Any] = {}
    for key in cfg if cfg is not None else ():
        try:
            given[str(key)] = cfg[key]  # an explicit null wins over the preset
        except Exception:  # omegaconf: `???` (missing) or a failed interpolation
            given[str(key)] = None
    return load_ctr_log({**PRESETS[preset], **given}, name=preset)


def load_ctr_log(cfg: Any, name: str | None = None) -> Dataset:
    """Load a click log described by ``cfg`` (see ``conf/dataset/ctr_log.yaml``).

    ``cfg.fields`` (overrides of the declarations) is applied by recframe on top of
    ``meta["fields"]``, like for every data set.
    The :class:`Dataset` is named ``name`` (a preset), else after the file.
    """
    check_keys(cfg, CONFIG_KEYS)
    spec = LogSpec.from_cfg(cfg)
    path = existing_file(spec.path, "dataset.path")
    read_cfg = {k: plain(opt(cfg, k)) for k in READ_KEYS}
    read_cfg["names"] = _names(path, spec, read_cfg)
    _check_header(path, spec, read_cfg)
    table = read_table(path, read_cfg, "dataset")
    unit = table.attrs["unit"]
    ds = build(table, spec, path, unit, name=name or path.stem)
    digests = file_digests([path])
    known = KNOWN_CHECKSUMS.get(path.name)
    verified = None if known is None else digests[path.name] == known
    if verified is False:
        log.warning("%s: md5 %s differs from the published %s of %s; not the DeepCTR sample?",
                    path, digests[path.name], known, path.name)
    fields = validate_fields(ds.meta["fields"], interactions=ds.interactions, users=ds.users,
                             items=ds.items, id_fields=spec.has_ids, where=NAME)
    ds.meta.update(
        fields=fields,
        fingerprint=combine(digests, {"loader": NAME, "version": VERSION, "spec": spec.as_dict(),
                                      "read": read_cfg}),
        files=digests, verified=verified, format=table.attrs["format"],
    )
    return ds


class LogSpec:
    """The validated roles of the file's columns (from the ``dataset`` config)."""

    def __init__(self, cfg: Any) -> None:
        self.path = opt(cfg, "path")
        if self.path is None or self.path == "":
            raise ConfigError("config key `dataset.path` is required: the click-log file, "
                              "e.g. `dataset.path=/data/criteo/train.txt`.")
        self.label = str(opt(cfg, "label", LABEL))
        self.label_threshold = opt(cfg, "label_threshold")
        if self.label_threshold is not None and (
                isinstance(self.label_threshold, bool)
                or not isinstance(self.label_threshold, (int, float))):
            raise ConfigError(f"`dataset.label_threshold` must be a number or null, got "
                              f"{self.label_threshold!r}.")
        self.numeric = str_list(opt(cfg, "numeric"), "dataset.numeric")
        self.categorical = str_list(opt(cfg, "categorical"), "dataset.categorical")
        self.text = str_list(opt(cfg, "text"), "dataset.text")
        self.multi = _multi_spec(opt(cfg, "multi_categorical"))
        self.normalize = str(opt(cfg, "normalize", "standard"))
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"`dataset.normalize` must be one of {', '.join(NORMALIZATIONS)}, "
                              f"got {self.normalize!r}.{suggest(self.normalize, NORMALIZATIONS)}")
        self.min_count = _int(opt(cfg, "min_count", 1), "min_count", 1)
        self.hist_len = _int(opt(cfg, "hist_len", 0), "hist_len", 0)
        self.user_column = _name(opt(cfg, "user_column"), "user_column")
        self.item_column = _name(opt(cfg, "item_column"), "item_column")
        self.timestamp = _name(opt(cfg, "timestamp"), "timestamp")
        self.hour_column = _name(opt(cfg, "hour_column"), "hour_column")
        self.ordered = opt(cfg, "ordered", False)
        if not isinstance(self.ordered, bool):
            raise ConfigError(f"`dataset.ordered` must be true or false, got {self.ordered!r}.")
        self.user_features = str_list(opt(cfg, "user_features"), "dataset.user_features")
        self.item_features = str_list(opt(cfg, "item_features"), "dataset.item_features")
        self._check()

    @classmethod
    def from_cfg(cls, cfg: Any) -> LogSpec:
        return cls(cfg)

    @property
    def has_ids(self) -> bool:
        return self.user_column is not None

    @property
    def features(self) -> list[str]:
        """Feature columns in declaration order."""
        return [*self.numeric, *self.categorical, *self.multi, *self.text]

    def roles(self) -> dict[str, str]:
        """File column -> the config key that uses it."""
        roles: dict[str, str] = {}
        singles = [("label", self.label), ("user_column", self.user_column),
                   ("item_column", self.item_column), ("timestamp", self.timestamp),
                   ("hour_column", self.hour_column)]
        pairs = [(k, c) for k, c in singles if c is not None]
        for key, cols in (("numeric", self.numeric), ("categorical", self.categorical),
                          ("multi_categorical", list(self.multi)), ("text", self.text)):
            pairs += [(key, c) for c in cols]
        for key, column in pairs:
            if column in roles:
                raise ConfigError(f"column {column!r} is used twice: by `dataset.{roles[column]}` "
                                  f"and by `dataset.{key}`; give each column one role.")
            roles[column] = key
        return roles

    def _check(self) -> None:
        self.roles()
        if (self.user_column is None) != (self.item_column is None):
            raise ConfigError("set both `dataset.user_column` and `dataset.item_column` (the "
                              "columns that identify users and items), or neither (a log "
                              "without users/items, like Criteo).")
        for column in self.features:
            taken = RESERVED + (HOUR_FIELDS if self.hour_column else ())
            if column in taken:
                raise ConfigError(f"feature column {column!r} has a name recframe reserves "
                                  f"({', '.join(taken)}); map it with `dataset.user_column` / "
                                  f"`item_column` / `timestamp`, or rename it with "
                                  f"`dataset.names`.")
        for key, cols in (("user_features", self.user_features),
                          ("item_features", self.item_features)):
            if cols and not self.has_ids:
                raise ConfigError(f"`dataset.{key}` needs `dataset.user_column` and "
                                  f"`dataset.item_column` (features belong to users/items).")
            for column in cols:
                if column not in self.features:
                    raise ConfigError(
                        f"`dataset.{key}` lists {column!r}, which no kind list declares; add it "
                        f"to `dataset.numeric`, `categorical`, `multi_categorical` or `text`."
                        f"{suggest(column, self.features)}")
        both = set(self.user_features) & set(self.item_features)
        if both:
            raise ConfigError(f"column {sorted(both)[0]!r} is in both `dataset.user_features` "
                              f"and `dataset.item_features`.")
        if self.hist_len and not self.has_ids:
            raise ConfigError("`dataset.hist_len` > 0 declares a history of items: it needs "
                              "`dataset.user_column` and `dataset.item_column`.")
        if self.hist_len and not (self.timestamp or self.hour_column or self.ordered):
            raise ConfigError("`dataset.hist_len` > 0 needs a time order: set "
                              "`dataset.timestamp` (or `hour_column`), or `dataset.ordered=true` "
                              "when the file lists impressions in time order.")

    def needed(self) -> list[str]:
        return list(self.roles())

    def as_dict(self) -> dict[str, Any]:
        """The roles (not the path: fingerprints follow the content)."""
        return {k: v for k, v in vars(self).items() if k != "path"}


def _multi_spec(value: Any) -> dict[str, dict[str, Any]]:
    """``{column: sep}`` or ``{column: {sep, max_len, pooling}}`` -> ``{column: options}``."""
    value = plain(value)
    if value is None:
        return {}
    if isinstance(value, (list, str)):
        cols = [value] if isinstance(value, str) else value
        example = ", ".join(f"{c}: '|'" for c in cols[:2])
        raise ConfigError(f"`dataset.multi_categorical` must map each column to its separator, "
                          f"e.g. {{{example}}} (null for list-valued Parquet columns), got "
                          f"{value!r}.")
    if not isinstance(value, dict):
        raise ConfigError(f"`dataset.multi_categorical` must be a mapping column -> separator, "
                          f"got {value!r}.")
    out = {}
    for column, options in value.items():
        if not isinstance(options, dict):
            options = {"sep": options}
        check_keys(options, ("sep", "max_len", "pooling"), f"dataset.multi_categorical.{column}")
        sep = options.get("sep")
        if sep is not None and (not isinstance(sep, str) or sep == ""):
            raise ConfigError(f"`dataset.multi_categorical.{column}`: the separator must be a "
                              f"non-empty string such as '|', got {sep!r}.")
        out[str(column)] = dict(options)
    return out


def _name(value: Any, key: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ConfigError(f"`dataset.{key}` must name one column, got {value!r}.")
    return str(value)


def _int(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"`dataset.{key}` must be an integer >= {low}, got {value!r}.")
    return value


# --------------------------------------------------------------------------- reading

def _names(path: Path, spec: LogSpec, read_cfg: dict[str, Any]) -> list[str] | None:
    """Column names for a header-less file with ``names: null``: the label, then the
    ``numeric``, then the ``categorical`` columns (the raw Criteo ``train.txt`` layout)."""
    if read_cfg["names"] is not None or read_cfg["header"] is not False:
        return read_cfg["names"]
    names = [spec.label, *spec.numeric, *spec.categorical]
    others = [c for c in spec.needed() if c not in names]
    fmt = detect_format(path, read_cfg["format"], "dataset")
    if fmt == "parquet":
        return None
    sep = read_cfg["sep"] or ("\t" if fmt == "tsv" else ",")
    first = read_header(path, sep, str(read_cfg["encoding"] or "utf-8"))
    if others or len(first) != len(names):
        raise ConfigError(
            f"{path}: `dataset.header=false` without `dataset.names`: the columns are taken to "
            f"be the label, then `numeric`, then `categorical` ({len(names)} columns), but "
            + (f"{others} are used too" if others else f"line 1 has {len(first)} fields")
            + "; list every column in `dataset.names`.")
    return names


def _check_header(path: Path, spec: LogSpec, read_cfg: dict[str, Any]) -> None:
    """Every configured column is in the file (checked before the body is read)."""
    fmt = detect_format(path, read_cfg["format"], "dataset")
    if fmt == "parquet":
        columns = _parquet_columns(path)
    elif read_cfg["names"] is not None:
        columns = [str(n) for n in read_cfg["names"]]
    else:
        sep = check_sep(str(read_cfg["sep"] or ("\t" if fmt == "tsv" else ",")), "dataset", path)
        encoding = check_encoding(str(read_cfg["encoding"] or "utf-8"), "dataset", path)
        columns = read_header(path, sep, encoding)
        if not columns:
            raise DataError(f"{path}: the file is empty or line 1 is blank (the header).")
        if read_cfg["header"] is False:
            raise ConfigError(f"{path}: `dataset.header=false`: set `dataset.names` to name "
                              f"the columns.")
        if len(columns) == 1 and len(spec.needed()) > 1:
            raise DataError(f"{path}: line 1 is a single column ({columns[0][:60]!r}); is "
                            f"`dataset.sep` right (now {sep!r})?")
    roles = spec.roles()
    missing = [c for c in roles if c not in columns]
    if missing:
        column = missing[0]
        raise DataError(f"{path}: column {column!r} (`dataset.{roles[column]}`) not found. "
                        f"Columns: {columns}.{suggest(column, columns)}")


# --------------------------------------------------------------------------- building

def build(table: pd.DataFrame, spec: LogSpec, path: Path, unit: str, name: str) -> Dataset:
    """The :class:`Dataset` of a read table (index = line numbers)."""
    n = len(table)
    if n == 0:
        raise DataError(f"{path}: the file has a header but no rows.")
    label = labels(table[spec.label], spec, path, unit)
    out: dict[str, Any] = {}
    if spec.has_ids:
        out[USER] = parse_ids(table[spec.user_column], path=path, column=spec.user_column,
                              role="user id", unit=unit)
        out[ITEM] = parse_ids(table[spec.item_column], path=path, column=spec.item_column,
                              role="item id", unit=unit)
    else:
        out[USER] = out[ITEM] = pd.Series(np.zeros(n, dtype="int64"), index=table.index)
    out[LABEL] = label
    hours = None
    if spec.hour_column:
        hours = parse_hours(table[spec.hour_column], path, spec.hour_column, unit)
    if spec.timestamp:
        out[TIMESTAMP] = parse_numeric(table[spec.timestamp], path=path, column=spec.timestamp,
                                       role="timestamp", unit=unit,
                                       hint=" Convert dates to Unix seconds first.")
    elif hours is not None:
        out[TIMESTAMP] = (hours.astype("datetime64[s]").astype("int64")).rename(TIMESTAMP)
    fields: list[dict[str, Any]] = []
    for column in spec.numeric:
        out[column] = numeric_column(table[column], path, column, unit)
        fields.append({"name": column, "kind": "numeric", "normalize": spec.normalize})
    for column in spec.categorical:
        out[column] = table[column]
        fields.append({"name": column, "kind": "categorical", "min_count": spec.min_count})
    for column, options in spec.multi.items():
        out[column], max_len = multi_column(table[column], options.get("sep"), path, column)
        fields.append({"name": column, "kind": "multi_categorical", "min_count": spec.min_count,
                       "max_len": int(options.get("max_len") or max_len),
                       **({"sep": options["sep"]} if options.get("sep") else {}),
                       **({"pooling": options["pooling"]} if options.get("pooling") else {})})
    for column in spec.text:
        out[column] = table[column]
        fields.append({"name": column, "kind": "text"})
    if hours is not None:
        out["hour_of_day"] = pd.Series(hours.dt.hour.astype("int64"), index=table.index)
        out["weekday"] = pd.Series(hours.dt.day_of_week.astype("int64"), index=table.index)
        fields += [{"name": h, "kind": "categorical", "min_count": 1} for h in HOUR_FIELDS]
    frame = pd.DataFrame({k: v.to_numpy() if hasattr(v, "to_numpy") else v
                          for k, v in out.items()}, index=table.index)
    users = items = None
    if spec.has_ids:
        users = feature_frame(frame, USER, spec.user_features, path, unit)
        items = feature_frame(frame, ITEM, spec.item_features, path, unit)
        frame = frame.drop(columns=[*spec.user_features, *spec.item_features])
    owners = {**{c: "user" for c in spec.user_features}, **{c: "item" for c in spec.item_features}}
    for f in fields:
        f["owner"] = owners.get(f["name"], "context")
    if spec.hist_len:
        fields.append({"name": "hist", "kind": "sequence", "owner": "context", "shares": ITEM,
                       "max_len": spec.hist_len})
    frame.index = pd.RangeIndex(n)
    meta: dict[str, Any] = {"fields": fields, "id_fields": spec.has_ids,
                            "label_rate": float(label.mean()), "label_column": spec.label}
    if spec.ordered:
        meta["ordered"] = True
    return Dataset(interactions=frame, users=users, items=items, name=name,
                   source=str(path), meta=meta)


def labels(values: pd.Series, spec: LogSpec, path: Path, unit: str) -> pd.Series:
    """0/1 int64 labels: the column as is, or ``value >= label_threshold``."""
    column = spec.label
    if spec.label_threshold is not None:
        score = parse_numeric(values, path=path, column=column, role="label", unit=unit)
        label = (score >= spec.label_threshold).astype("int64")
    else:
        number = pd.to_numeric(values.astype("string").str.strip(), errors="coerce") \
            if not pd.api.types.is_numeric_dtype(values) else values.astype("float64")
        bad = ~number.isin([0, 1])
        if bad.any():
            where = first_bad(bad)
            found = pd.unique(values.dropna().astype("string").str.strip())[:8]
            empty = " (and empty fields)" if values.isna().any() else ""
            raise DataError(
                f"{path}: {unit} {where}: label column {column!r} holds "
                f"{describe(values.loc[where])}; labels must be 0 or 1 (values found: "
                f"{', '.join(map(repr, map(str, found)))}{empty}). Is `dataset.label` the click "
                f"column? For ratings or scores set `dataset.label_threshold` (label = "
                f"value >= threshold).")
        label = number.astype("int64")
    rate = float(label.mean())
    if rate in (0.0, 1.0):
        how = (f" with `dataset.label_threshold={spec.label_threshold}`"
               if spec.label_threshold is not None else "")
        raise DataError(
            f"{path}: every one of the {len(label)} rows has label {int(rate)} (column "
            f"{column!r}{how}); a click log needs both clicks (1) and non-clicks (0): AUC and "
            f"LogLoss are undefined otherwise. Check `dataset.label`"
            + (" and `dataset.label_threshold`." if how else "."))
    return label


def numeric_column(values: pd.Series, path: Path, column: str, unit: str) -> pd.Series:
    """float64; empty fields stay missing (NaN); any other non-number is an error."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.astype("string").str.strip()
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = number.isna() & text.notna() & (text != "")
    if bad.any():
        where = first_bad(bad)
        raise DataError(f"{path}: {unit} {where}: numeric column {column!r} holds "
                        f"{values.loc[where]!r}; numeric fields hold numbers (empty = missing). "
                        f"List it under `dataset.categorical` if it is a code.")
    return number


def multi_column(values: pd.Series, sep: str | None, path: Path, column: str
                 ) -> tuple[pd.Series, int]:
    """The column as read (strings cut at ``sep`` later, or lists) and its most values."""
    present = values.dropna()
    head = present.head(100)  # typed (Parquet) columns hold one type: a sample decides
    is_list = len(head) > 0 and head.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all()
    if is_list:
        return values, int(present.map(len).max())
    if sep is None:
        sample = str(present.iloc[0]) if len(present) else ""
        guess = next((s for s in _SEP_GUESSES if s in sample), None)
        hint = f" e.g. {{{column}: {guess!r}}}" if guess else ""
        raise ConfigError(f"{path}: multi-valued column {column!r} holds strings (e.g. "
                          f"{sample[:40]!r}) but has no separator; set it in "
                          f"`dataset.multi_categorical`,{hint}.")
    text = present.astype("string")
    parts = text.str.split(re.escape(sep) if len(sep) > 1 else sep, regex=len(sep) > 1)
    return values, int(parts.str.len().max()) if len(parts) else 1


def parse_hours(values: pd.Series, path: Path, column: str, unit: str) -> pd.Series:
    """``YYMMDDHH`` (Avazu's ``hour``, e.g. ``14102100``) -> datetime64 (UTC hours)."""
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text.where(text.str.fullmatch(r"\d{8}").fillna(False)),
                            format="%y%m%d%H", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        where = first_bad(bad)
        raise DataError(f"{path}: {unit} {where}: `dataset.hour_column` {column!r} holds "
                        f"{describe(values.loc[where])}; expected YYMMDDHH, e.g. '14102100' "
                        f"(2014-10-21, 00h).")
    return parsed


def feature_frame(frame: pd.DataFrame, key: str, columns: list[str], path: Path, unit: str
                  ) -> pd.DataFrame | None:
    """``columns`` of ``frame`` as a frame indexed by ``key`` (one row per id, in order of
    first appearance); a :class:`DataError` if an id has two values of a column."""
    if not columns:
        return None
    for column in columns:
        pairs = frame[[key, column]].drop_duplicates()
        clash = pairs[key].duplicated()
        if clash.any():
            ident = pairs[key][clash].iloc[0]
            ident = ident.item() if isinstance(ident, np.generic) else ident
            seen = pairs.loc[pairs[key] == ident, column].tolist()[:3]
            lines = frame.index[frame[key] == ident][:3].tolist()
            raise DataError(f"{path}: {key} {ident!r} has several values of {column!r} "
                            f"({', '.join(map(repr, seen))}; {unit}s {lines}), so it cannot be "
                            f"a {key.split('_')[0]} feature; move it from "
                            f"`dataset.{key.split('_')[0]}_features` to a context field.")
    out = frame[[key, *columns]].drop_duplicates(subset=key).set_index(key)
    return out
