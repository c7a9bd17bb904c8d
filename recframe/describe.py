"""``recframe datasets`` and ``recframe describe``: the dataset catalogue and its statistics.

``describe`` composes the config as ``recframe run`` does (same overrides), loads the
data set with its registered loader (no preprocessing, nothing written) and prints
its size, density, history lengths, whether it has timestamps (times or an order),
ratings and labels, and its feature fields with their kinds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from recframe.data.types import ITEM, LABEL, USER, Dataset
from recframe.errors import ConfigError, UnknownNameError, unknown_name_message

DESCRIBE_USAGE = """usage: recframe describe dataset=NAME [OVERRIDES] [--json]

Load a data set as `recframe run` would (the same config and overrides, e.g.
dataset.path=... dataset.n_users=...; no preprocessing) and print its statistics.
`recframe datasets` lists the names.
"""
QUANTILES = {"min": 0.0, "25%": 0.25, "50%": 0.5, "75%": 0.75, "90%": 0.9, "max": 1.0}


def datasets_command(args: Sequence[str] = ()) -> int:
    """Print every registered data set with its description."""
    from recframe.plugin.manager import default_manager

    pm = default_manager()
    names = pm.datasets.names()
    width = max((len(n) for n in names), default=0)
    for name in names:
        spec = pm.datasets.get(name)
        print(f"{name:<{width}}  {spec.description}")
    print("\n`recframe describe dataset=NAME` shows a data set's statistics.")
    return 0


def describe_command(args: Sequence[str]) -> int:
    """``recframe describe dataset=NAME [OVERRIDES] [--json]``."""
    args = list(args)
    if any(a in ("-h", "--help") for a in args):
        print(DESCRIBE_USAGE)
        return 0
    as_json = "--json" in args
    overrides = [a for a in args if a != "--json"]
    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise ConfigError(f"recframe describe: unknown option {flags[0]!r}; expected "
                          f"dataset=NAME, config overrides and --json.")
    ds = load_dataset(overrides)
    stats = describe(ds)
    print(json.dumps(stats, indent=2) if as_json else format_stats(stats))
    return 0


def load_dataset(overrides: Sequence[str]) -> Dataset:
    """Compose the run config with ``overrides`` and load its data set (no preprocessing)."""
    from recframe.plugin.manager import default_manager

    pm = default_manager()
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("dataset=")]
    if not chosen:
        raise ConfigError("recframe describe: name the data set, e.g. `recframe describe "
                          "dataset=ml-100k`; `recframe datasets` lists the names.")
    name = chosen[-1]
    if name not in pm.datasets:
        raise UnknownNameError(unknown_name_message("dataset", name, pm.datasets.names(),
                                                    "dataset"))
    cfg = _compose(list(overrides))
    spec = pm.datasets.get(str(cfg.dataset.name), key="dataset.name")
    return spec.load(cfg.dataset)


def _compose(overrides: list[str]) -> Any:
    from hydra.errors import HydraException, MissingConfigException

    from recframe.hydra_app import compose_config

    try:
        return compose_config(overrides)
    except MissingConfigException as exc:
        raise ConfigError(f"recframe describe: {exc} (is there a conf/dataset/<NAME>.yaml?)"
                          ) from None
    except (HydraException, ValueError) as exc:
        raise ConfigError(f"recframe describe: bad override in {overrides}: {exc}") from None


def describe(ds: Dataset) -> dict[str, Any]:
    """Statistics of ``ds`` as a JSON-able mapping.

    ``timestamps`` is ``"time"``, ``"order"`` (positions within each user's history,
    ``Dataset.meta["timestamp_kind"]``) or None; a click log without users and items
    (``meta["id_fields"]`` false) has None for users, items, density and history.
    """
    frame = ds.interactions
    n = len(frame)
    ids = bool(ds.meta.get("id_fields", True))
    n_users = int(frame[USER].nunique()) if ids else None
    n_items = int(frame[ITEM].nunique()) if ids else None
    history: dict[str, float] | None = None
    if ids and n:
        lengths = frame.groupby(USER, sort=False).size().to_numpy()
        history = {k: float(np.quantile(lengths, q)) for k, q in QUANTILES.items()}
        history["mean"] = float(lengths.mean())
    kind = str(ds.meta.get("timestamp_kind", "time"))
    return {
        "name": ds.name,
        "source": ds.source,
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "density": n / (n_users * n_items) if n_users and n_items else None,
        "history_length": history,
        "timestamps": kind if ds.has_timestamps else None,
        "ratings": ds.has_ratings,
        "labels": LABEL in frame.columns,
        "fields": _fields(ds),
    }


def _fields(ds: Dataset) -> list[dict[str, str]]:
    """Declared and inferred feature fields (not the ids), with kind and owner."""
    from recframe.data.field_encoding import declared_fields

    decls = declared_fields(ds)
    return [{"name": d.name, "kind": d.kind, "owner": d.owner} for d in decls
            if d.name not in (USER, ITEM)]


def format_stats(stats: dict[str, Any]) -> str:
    """The text form of :func:`describe`'s statistics."""
    h = stats["history_length"]
    per_user = ("no users" if h is None else ", ".join(
        f"{k} {_num(h[k])}" for k in QUANTILES) + f"; mean {h['mean']:.1f}")
    ts = stats["timestamps"]
    timestamps = ("no" if ts is None else
                  "yes (an order: each event's position in its user's history, not seconds)"
                  if ts == "order" else "yes (times)")
    rows = [
        ("dataset", f"{stats['name']} ({stats['source']})"),
        ("users", _num(stats["users"])),
        ("items", _num(stats["items"])),
        ("interactions", _num(stats["interactions"])),
        ("density", "-" if stats["density"] is None else f"{stats['density']:.4%}"),
        ("per user", per_user),
        ("timestamps", timestamps),
        ("ratings", "yes" if stats["ratings"] else "no"),
        ("labels", "yes" if stats["labels"] else "no"),
    ]
    for owner in ("item", "user", "context"):
        fields = [f"{f['name']} ({f['kind']})" for f in stats["fields"] if f["owner"] == owner]
        rows.append((f"{owner} fields", ", ".join(fields) if fields else "none"))
    return "\n".join(f"{key:<15}{value}" for key, value in rows)


def _num(x: float | None) -> str:
    if x is None:
        return "- (no user/item ids)"
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"
