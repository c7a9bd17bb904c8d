"""Field declarations (``Dataset.meta["fields"]``) of the click-log data sets.

A declaration is a plain dict; only ``name`` and ``kind`` are required::

    {"name": "genres", "kind": "multi_categorical", "owner": "item", "sep": "|"}
    {"name": "age", "kind": "numeric", "owner": "user", "normalize": "standard", "buckets": 8}
    {"name": "hist", "kind": "sequence", "owner": "context", "shares": "item_id", "max_len": 20}

``owner`` says which frame holds the column: ``user`` (``Dataset.users``),
``item`` (``Dataset.items``) or ``context`` (``Dataset.interactions``); sequence
fields are derived by recframe and have no column. recframe fits vocabularies and
statistics on the train part and applies ``dataset.fields`` overrides from the
config; this module only checks that a loader's own declarations are well-formed
and match its frames, so a loader bug fails at load time with the field named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from recframe.api import ITEM, LABEL, TIMESTAMP, USER, ConfigError, DataError

from .config import plain, suggest

# Kept equal to recframe.data.fields (tests check it): plugins import only recframe.api.
FIELD_KINDS = ("categorical", "multi_categorical", "numeric", "text", "sequence")
OWNERS = ("user", "item", "context")
NORMALIZATIONS = ("standard", "minmax", "log", "none")
POOLINGS = ("mean", "sum")
FIELD_KEYS = ("name", "kind", "owner", "sep", "max_len", "min_count", "pooling", "normalize",
              "buckets", "shares", "column")
#: keys each kind accepts besides name/kind/owner
KIND_KEYS = {
    "categorical": ("min_count",),
    "multi_categorical": ("sep", "max_len", "min_count", "pooling"),
    "numeric": ("normalize", "buckets"),
    "text": (),
    "sequence": ("shares", "max_len"),
}
#: columns of the interaction frame that are not features
RESERVED = (USER, ITEM, LABEL, TIMESTAMP)


def validate_fields(fields: list[dict[str, Any]], *, interactions: pd.DataFrame,
                    users: pd.DataFrame | None, items: pd.DataFrame | None,
                    where: str = "meta['fields']", id_fields: bool = True
                    ) -> list[dict[str, Any]]:
    """Check declarations against the frames; fill in each field's ``owner``.

    Raises a :class:`ConfigError` for a malformed declaration (unknown kind,
    owner or option, a bad value) and a :class:`DataError` when the owner's frame
    lacks the column. Returns the declarations with ``owner`` set.
    """
    frames = {"context": interactions, "user": users, "item": items}
    names = [str(f.get("name", "")) for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: field {dup[0]!r} is declared twice; names must be unique.")
    categorical = {str(f["name"]) for f in fields if f.get("kind") == "categorical"}
    shareable = ({USER, ITEM} if id_fields else set()) | categorical
    out = []
    for f in fields:
        f = dict(f)
        name, kind = str(f.get("name", "")), f.get("kind")
        tag = f"{where}: field {name!r}"
        if not name:
            raise ConfigError(f"{where}: a field has no `name`: {f!r}.")
        if kind not in FIELD_KINDS:
            raise ConfigError(f"{tag}: kind must be one of {', '.join(FIELD_KINDS)}, got "
                              f"{kind!r}.{suggest(str(kind), FIELD_KINDS)}")
        extra = [k for k in f if k not in ("name", "kind", "owner", "column", *KIND_KEYS[kind])]
        if extra:
            raise ConfigError(f"{tag}: option {extra[0]!r} does not apply to a {kind} field "
                              f"(it takes {', '.join(KIND_KEYS[kind]) or 'no options'}).")
        if name in RESERVED and not (kind == "categorical" and name in (USER, ITEM)):
            raise ConfigError(f"{tag}: {name!r} is a reserved column name; rename the field.")
        _check_options(f, tag)
        owner = f.get("owner")
        if owner is not None and owner not in OWNERS:
            raise ConfigError(f"{tag}: owner must be one of {', '.join(OWNERS)}, got "
                              f"{owner!r}.{suggest(str(owner), OWNERS)}")
        if kind == "sequence":
            if owner not in (None, "context"):
                raise ConfigError(f"{tag}: a sequence field belongs to the impression row "
                                  f"(owner context), got owner {owner!r}.")
            f["owner"] = "context"
            shares = f.setdefault("shares", ITEM)
            if shares not in shareable:
                raise ConfigError(f"{tag}: `shares` must name a categorical field "
                                  f"({sorted(shareable)}), got {shares!r}."
                                  f"{suggest(str(shares), shareable)}")
            out.append(f)
            continue
        column = str(f.get("column") or name)
        having = [o for o, frame in frames.items()
                  if frame is not None and column in frame.columns]
        if owner is None:
            if not having:
                raise DataError(f"{tag}: no frame has a column {column!r}. "
                                + _columns_hint(column, frames))
            if len(having) > 1:
                raise ConfigError(f"{tag}: columns named {column!r} are in several frames "
                                  f"({', '.join(_FRAME[o] for o in having)}); set its "
                                  f"`owner` ({', '.join(having)}).")
            owner = having[0]
        elif owner not in having:
            raise DataError(f"{tag}: owner {owner!r} but the {_FRAME[owner]} frame has no "
                            f"column {column!r}. " + _columns_hint(column, frames))
        f["owner"] = owner
        out.append(f)
    return out


_FRAME = {"context": "interactions", "user": "users", "item": "items"}


def _columns_hint(name: str, frames: Mapping[str, pd.DataFrame | None]) -> str:
    cols = {f"{_FRAME[o]}": list(map(str, fr.columns)) for o, fr in frames.items()
            if fr is not None}
    every = [c for cs in cols.values() for c in cs]
    return f"Columns: {cols}.{suggest(name, every)}"


def _check_options(f: dict[str, Any], tag: str) -> None:
    for key in ("max_len", "min_count"):
        if key in f and not (_is_int(f[key]) and f[key] >= 1):
            raise ConfigError(f"{tag}: `{key}` must be an integer >= 1, got {f[key]!r}.")
    if "buckets" in f and not (_is_int(f["buckets"]) and f["buckets"] >= 0):
        raise ConfigError(f"{tag}: `buckets` must be an integer >= 0 (0 = no bucketing), got "
                          f"{f['buckets']!r}.")
    if "normalize" in f and f["normalize"] not in NORMALIZATIONS:
        raise ConfigError(f"{tag}: `normalize` must be one of {', '.join(NORMALIZATIONS)}, got "
                          f"{f['normalize']!r}.{suggest(str(f['normalize']), NORMALIZATIONS)}")
    if "pooling" in f and f["pooling"] not in POOLINGS:
        raise ConfigError(f"{tag}: `pooling` must be one of {', '.join(POOLINGS)}, got "
                          f"{f['pooling']!r}.")
    if "sep" in f and f["sep"] is not None and (not isinstance(f["sep"], str) or not f["sep"]):
        raise ConfigError(f"{tag}: `sep` must be a non-empty string, got {f['sep']!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def str_list(value: Any, key: str) -> list[str]:
    """A config list of column names (``null`` -> empty); a :class:`ConfigError` otherwise."""
    value = plain(value)
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"`{key}` must be a list of column names, e.g. `{key}=[a,b]`, got "
                          f"{value!r}.")
    out = [str(v) for v in value]
    dup = sorted({v for v in out if out.count(v) > 1})
    if dup:
        raise ConfigError(f"`{key}` lists {dup[0]!r} twice.")
    return out


def declared_names(fields: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of a list of declarations, in order."""
    return [str(f["name"]) for f in fields]
