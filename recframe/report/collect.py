"""Find run directories, load their records, group runs that differ only by seed.

A *run* is a directory holding a ``results.json`` written by
:func:`recframe.runner.run_experiment`. Runs are grouped by their resolved
config with every seed-like and run-specific key removed (see
:func:`group_key`); a group's *label* is the smallest set of config values
that tells the groups apart, the model name first (see :func:`label_groups`).
Groups are then partitioned into *blocks* of comparable protocol (evaluation
kind: ranking or CTR, dataset, preprocessing, split, candidate policy; see
:func:`protocol_signature`): best marks and significance tests never cross a block.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recframe.errors import RecframeError
from recframe.results import CALIBRATION_FILE, PER_USER_FILE, RESULTS_FILE


class ReportError(RecframeError):
    """The report cannot be built from the given directories or options."""


# Config keys that never identify a configuration: output locations, logging
# destinations (a logger never changes a result), run-dir specific paths, and
# settings documented not to change any metric. Patterns match dotted keys
# (fnmatch; a pattern also matches everything below it).
IGNORED_KEYS: tuple[str, ...] = (
    "output_root",
    "run_dir",
    "hydra",
    "logger",
    "callbacks.*.dirpath",
    "callbacks.*.save_dir",
    "num_workers",
    "evaluation.batch_size",
)
# Seed keys that are always dropped from the group key: the global seed and the
# ones the shipped configs interpolate from it (split.seed, evaluation.seed).
SEED_KEYS: tuple[str, ...] = ("seed", "split.seed", "evaluation.seed")
_SEED_INTERPOLATION = re.compile(r"\$\{[^}]*\bseed\s*\}")
_MISSING = "<missing>"


def canonical(value: Any) -> str:
    """A stable text form of a config value, used to compare and hash values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and empty dicts are leaves."""
    if not isinstance(node, dict) or (not node and prefix):
        return {prefix.rstrip("."): node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") or fnmatch.fnmatchcase(key, p)
               or fnmatch.fnmatchcase(key, p + ".*") for p in patterns)


def _read_json(path: Path) -> dict[str, Any]:
    # results.json is replaced atomically by the runner (temp file + rename),
    # so one read sees a whole file; read it once, then parse.
    data = json.loads(path.read_bytes().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("results.json does not hold a JSON object")
    return data


@dataclass
class Run:
    """One run directory and its ``results.json``."""

    run_dir: Path
    root: Path
    results: dict[str, Any]
    _per_user: Any = field(default=None, repr=False)
    _history: Any = field(default=None, repr=False)
    _calibration: Any = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return str(self.results.get("status", "unknown"))

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.results.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def model_name(self) -> str:
        model = self.config.get("model")
        return str(model.get("name")) if isinstance(model, dict) else "?"

    @property
    def protocol(self) -> dict[str, Any]:
        return self.results.get("protocol") or {}

    @property
    def fingerprint(self) -> str | None:
        return self.protocol.get("data_fingerprint")

    @property
    def test_metrics(self) -> dict[str, float]:
        return (self.results.get("metrics") or {}).get("test") or {}

    @property
    def sampled(self) -> bool:
        return (self.protocol.get("candidates") or {}).get("policy") == "sampled"

    @property
    def kind(self) -> str:
        """The evaluation protocol: ``"ctr"`` (labeled impressions scored pointwise) or
        ``"ranking"`` (``protocol.kind`` absent in runs that predate the CTR protocol)."""
        return str(self.protocol.get("kind") or "ranking")

    def calibration(self) -> dict[str, Any] | None:
        """The test part's reliability table from ``calibration.json`` (CTR runs), or None
        when the run has none or it is unreadable."""
        if self._calibration is None:
            self._calibration = False
            path = self.run_dir / CALIBRATION_FILE
            if path.is_file():
                try:
                    data = json.loads(path.read_bytes().decode("utf-8"))
                except (OSError, ValueError, UnicodeDecodeError):
                    data = None
                test = data.get("test") if isinstance(data, dict) else None
                if isinstance(test, dict):
                    self._calibration = test
        return None if self._calibration is False else self._calibration

    @property
    def display(self) -> str:
        """The run dir relative to the directory it was found under (stable, short)."""
        rel = os.path.relpath(self.run_dir, self.root)
        name = self.root.name or str(self.root)
        return name if rel == "." else f"{name}/{Path(rel).as_posix()}"

    def per_user(self) -> pd.DataFrame | None:
        """``per_user.parquet`` (user_id as str), or None when the run has none."""
        if self._per_user is None:
            path = self.run_dir / PER_USER_FILE
            if not path.is_file():
                self._per_user = False
            else:
                frame = pd.read_parquet(path)
                if "user_id" not in frame.columns:
                    frame.insert(0, "user_id", frame["user"])
                frame["user_id"] = frame["user_id"].astype(str)
                self._per_user = frame
        return None if self._per_user is False else self._per_user

    def history(self) -> pd.DataFrame | None:
        """``logs/metrics.csv`` of the CSV logger (or the first metrics.csv below the run)."""
        if self._history is None:
            path = self.run_dir / "logs" / "metrics.csv"
            if not path.is_file():
                found = sorted(p for p in self.run_dir.rglob("metrics.csv") if p.is_file())
                path = found[0] if found else None
            try:
                self._history = pd.read_csv(path) if path is not None else False
            except (OSError, ValueError, pd.errors.ParserError):
                self._history = False
        return None if self._history is False else self._history

    def seed_paths(self) -> set[str]:
        """Keys whose composed (unresolved) value interpolates the seed, from ``.hydra``."""
        path = self.run_dir / ".hydra" / "config.yaml"
        if not path.is_file():
            return set()
        try:
            from omegaconf import OmegaConf

            raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        except Exception:  # a damaged .hydra file only loses this hint
            return set()
        return {k for k, v in flatten(raw).items()
                if isinstance(v, str) and _SEED_INTERPOLATION.search(v)}


@dataclass
class Skipped:
    """A results.json that could not be read."""

    path: Path
    root: Path
    reason: str

    @property
    def display(self) -> str:
        rel = os.path.relpath(self.path.parent, self.root)
        name = self.root.name or str(self.root)
        return name if rel == "." else f"{name}/{Path(rel).as_posix()}"


def find_unfinished(dirs: Sequence[Path | str]) -> list[Skipped]:
    """Job dirs below ``dirs`` that Hydra started (``.hydra/config.yaml``) but that have no
    ``results.json`` yet: ``running`` while a process holds the job's lock
    (:mod:`recframe.joblock`), else ``unfinished`` (killed, or not resumed yet)."""
    from recframe.joblock import is_running

    found: list[Skipped] = []
    for d in dirs:
        root = Path(d)
        if root.is_file():
            continue
        for config in sorted(root.rglob(".hydra/config.yaml")):
            run_dir = config.parent.parent
            if (run_dir / RESULTS_FILE).exists():
                continue
            state = "running" if is_running(run_dir) else "unfinished"
            found.append(Skipped(run_dir / RESULTS_FILE, root, state))
    return sorted(found, key=lambda s: s.display)


def find_runs(dirs: Sequence[Path | str]) -> tuple[list[Run], list[Skipped]]:
    """Every ``results.json`` below ``dirs`` (recursive), loaded; unreadable ones skipped."""
    runs: list[Run] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for d in dirs:
        root = Path(d)
        if not root.exists():
            raise ReportError(f"no such directory: {root}")
        candidates = [root] if root.is_file() else sorted(root.rglob(RESULTS_FILE))
        for path in candidates:
            if path.name != RESULTS_FILE or not path.is_file():
                continue
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            base = root.parent if root.is_file() else root
            try:
                runs.append(Run(path.parent, base, _read_json(path)))
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                skipped.append(Skipped(path, base, f"{type(exc).__name__}: {exc}"))
    runs.sort(key=lambda r: (r.display, str(r.run_dir)))
    skipped.sort(key=lambda s: s.display)
    return runs, skipped


def seed_derived_paths(runs: Sequence[Run]) -> set[str]:
    """Seed keys to drop from the group key.

    The fixed :data:`SEED_KEYS`, every key a run's ``.hydra/config.yaml``
    interpolates from the seed, and every key named ``seed``/``*_seed`` whose
    value equals the run's global seed in every run that has it (so a fixed
    ``dataset.seed: 0`` next to ``seed=0,1`` stays part of the configuration).
    """
    paths = set(SEED_KEYS)
    for run in runs:
        paths |= run.seed_paths()
    candidates: dict[str, bool] = {}
    for run in runs:
        for key, value in flatten(run.config).items():
            last = key.rsplit(".", 1)[-1]
            if last != "seed" and not last.endswith("_seed"):
                continue
            same = canonical(value) == canonical(run.seed)
            candidates[key] = candidates.get(key, True) and same
    paths |= {k for k, same in candidates.items() if same}
    return paths


def group_key(run: Run, drop: set[str], ignore: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The resolved config minus seed keys and ignored keys, as a sorted tuple."""
    flat = flatten(run.config)
    return tuple(sorted((k, canonical(v)) for k, v in flat.items()
                        if k not in drop and not _matches(k, ignore)))


@dataclass
class Group:
    """Runs that differ only by seed."""

    key: tuple[tuple[str, str], ...]
    runs: list[Run]
    label: str = ""
    duplicates: list[Run] = field(default_factory=list)

    @property
    def flat(self) -> dict[str, str]:
        return dict(self.key)

    @property
    def model_name(self) -> str:
        return self.runs[0].model_name

    @property
    def sampled(self) -> bool:
        return any(r.sampled for r in self.runs)

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    def run_for_seed(self, seed: Any) -> Run | None:
        for run in self.runs:
            if canonical(run.seed) == canonical(seed):
                return run
        return None


def _seed_sort(seed: Any) -> tuple[int, Any]:
    if isinstance(seed, bool) or seed is None:
        return (2, str(seed))
    if isinstance(seed, (int, float)) and not (isinstance(seed, float) and math.isnan(seed)):
        return (0, seed)
    return (1, str(seed))


def group_runs(runs: Sequence[Run], ignore: Sequence[str] = ()) -> tuple[list[Group], list[str]]:
    """Group successful runs by :func:`group_key`; label them; return groups and warnings.

    Within a group one run per seed is kept: when a seed was run twice, the run
    whose directory sorts last (the latest for timestamped run dirs) is used and
    the others are reported in a warning.
    """
    warnings: list[str] = []
    drop = seed_derived_paths(runs)
    patterns = (*IGNORED_KEYS, *ignore)
    by_key: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        by_key.setdefault(group_key(run, drop, patterns), []).append(run)
    groups: list[Group] = []
    for key, members in by_key.items():
        per_seed: dict[str, list[Run]] = {}
        for run in sorted(members, key=lambda r: (r.display, str(r.run_dir))):
            per_seed.setdefault(canonical(run.seed), []).append(run)
        kept = sorted((rs[-1] for rs in per_seed.values()), key=lambda r: _seed_sort(r.seed))
        dups = [r for rs in per_seed.values() for r in rs[:-1]]
        groups.append(Group(key, kept, duplicates=dups))
    labels = label_groups([g.flat for g in groups])
    for group, label in zip(groups, labels, strict=True):
        group.label = label + (" [SAMPLED]" if group.sampled else "")
    groups.sort(key=lambda g: g.label)
    for group in groups:
        for dup in group.duplicates:
            kept = group.run_for_seed(dup.seed)
            warnings.append(f"group {group.label}: seed {dup.seed} was run more than once; "
                            f"using {kept.display if kept else '?'}, ignoring {dup.display}")
    return groups, warnings


def _format_value(raw: str) -> str:
    """A canonical JSON value as label text: strings bare, numbers/lists as JSON."""
    if raw == _MISSING:
        return "-"
    value = json.loads(raw)
    return value if isinstance(value, str) else raw


def label_groups(flats: Sequence[dict[str, str]]) -> list[str]:
    """Readable, unique labels: ``model.name`` plus the fewest differing keys.

    Starting from the model name, groups that still share a label are split
    greedily by the key with the most distinct values among them (ties: keys
    every member has, then ``*.name`` keys such as ``split.name``, then keys
    under ``model.``, then alphabetical), until every label is unique.
    A key is shown by its last component (``optim.lr`` -> ``lr=0.01``) unless
    two chosen keys share that component, then by its full path.
    """
    n = len(flats)
    if n == 0:
        return []
    keys = sorted({k for f in flats for k in f})

    def value(i: int, key: str) -> str:
        return flats[i].get(key, _MISSING)

    chosen: list[list[str]] = [[] for _ in range(n)]
    if any("model.name" in f for f in flats):
        for parts in chosen:
            parts.append("model.name")
    while True:
        blocks: dict[tuple[str, ...], list[int]] = {}
        for i in range(n):
            blocks.setdefault(tuple(value(i, k) for k in chosen[i]), []).append(i)
        split_any = False
        for members in blocks.values():
            if len(members) < 2:
                continue
            best_key, best_count = None, 1
            def preference(k: str, members: list[int] = members) -> tuple[bool, bool, bool, str]:
                missing = any(k not in flats[i] for i in members)
                return missing, not k.endswith(".name"), not k.startswith("model."), k

            for key in sorted(keys, key=preference):
                count = len({value(i, key) for i in members})
                if count > best_count:
                    best_key, best_count = key, count
            if best_key is None:
                continue
            for i in members:
                chosen[i].append(best_key)
            split_any = True
        if not split_any:
            break
    used = sorted({k for parts in chosen for k in parts})
    short = {k: k.rsplit(".", 1)[-1] for k in used}
    counts: dict[str, int] = {}
    for s in short.values():
        counts[s] = counts.get(s, 0) + 1
    labels = []
    for i, parts in enumerate(chosen):
        text = []
        for key in parts:
            if key == "model.name":
                text.append(_format_value(value(i, key)))
            else:
                name = short[key] if counts[short[key]] == 1 else key
                text.append(f"{name}={_format_value(value(i, key))}")
        labels.append(" ".join(text) or "run")
    # Identical labels can only remain for identical flats, which group_runs never makes.
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} #{seen[label]}"
    return labels


def protocol_signature(run: Run) -> dict[str, Any]:
    """Protocol fields that must match for two runs to be comparable (seeds excluded)."""
    proto = run.protocol
    split = {k: v for k, v in (proto.get("split") or run.config.get("split") or {}).items()
             if k != "seed" and not k.endswith("_seed")}
    candidates = proto.get("candidates") or {"policy": "full"}
    candidates = {k: v for k, v in candidates.items() if k not in ("seed", "note")}
    dataset = proto.get("dataset") or {"name": (run.config.get("dataset") or {}).get("name")}
    # where the fingerprint came from does not change the data (runs before it was recorded)
    dataset = {k: v for k, v in dataset.items() if k != "raw_fingerprint_source"}
    signature = {
        "kind": run.kind,
        "dataset": dataset,
        "preprocess": proto.get("preprocess", run.config.get("preprocess")) or [],
        "split": split,
        "candidates": candidates,
    }
    cold = proto.get("cold_start") or {}
    if cold.get("ranking"):  # cold-start runs: which items each view ranked
        signature["cold_ranking"] = cold["ranking"]
    return signature


@dataclass
class Block:
    """Groups evaluated under the same protocol: one table, one set of tests."""

    signature: dict[str, Any]
    groups: list[Group]

    @property
    def sampled(self) -> bool:
        return not self.ctr and self.signature["candidates"].get("policy") == "sampled"

    @property
    def ctr(self) -> bool:
        """Whether the block's runs were evaluated under the CTR protocol."""
        return self.signature.get("kind") == "ctr"

    def describe(self) -> str:
        sig = self.signature
        ds = sig["dataset"]
        parts = [f"dataset {ds.get('name')}"]
        if ds.get("raw_fingerprint"):
            parts[0] += f" (raw data {str(ds['raw_fingerprint'])[:12]})"
        steps = [str(s.get("name", s)) if isinstance(s, dict) else str(s)
                 for s in sig["preprocess"]]
        parts.append("preprocess " + (" > ".join(steps) if steps else "none"))
        split = dict(sig["split"])
        name = split.pop("name", "?")
        parts.append(f"split {name}" + "".join(f" {k}={canonical(v)}" for k, v in
                                               sorted(split.items())))
        cand = sig["candidates"]
        if self.ctr:
            parts.append("CTR protocol (every labeled impression of the part scored "
                         "pointwise; not comparable to ranking metrics)")
        elif cand.get("policy") == "sampled":
            parts.append(f"SAMPLED candidates ({cand.get('num_negatives')} "
                         f"{cand.get('sampling')} negatives; not comparable to full ranking)")
        else:
            parts.append(f"{cand.get('policy', 'full')} ranking")
        if sig.get("cold_ranking"):
            parts.append(f"cold-start views: {sig['cold_ranking']}")
        return ", ".join(parts)


def make_blocks(groups: Sequence[Group]) -> tuple[list[Block], list[str]]:
    """Partition groups by protocol signature; warn about anything not comparable."""
    warnings: list[str] = []
    by_sig: dict[str, Block] = {}
    for group in groups:
        sigs = {canonical(protocol_signature(r)) for r in group.runs}
        if len(sigs) > 1:
            warnings.append(f"group {group.label}: its runs were evaluated under different "
                            "protocols although their configs match; using the first run's")
        sig = protocol_signature(group.runs[0])
        by_sig.setdefault(canonical(sig), Block(sig, [])).groups.append(group)
    blocks = sorted(by_sig.values(), key=lambda b: (b.ctr, b.sampled, b.groups[0].label))
    if len(blocks) > 1:
        fields = sorted({f for b in blocks for f in b.signature
                         if len({canonical(o.signature[f]) for o in blocks}) > 1})
        warnings.append(
            f"groups are NOT all comparable: they fall into {len(blocks)} protocols "
            f"(differing in: {', '.join(fields)}); each protocol gets its own tables, and no "
            "best mark or significance test crosses protocols")
    for block in blocks:
        if block.sampled:
            warnings.append("SAMPLED (not comparable to full ranking): "
                            + ", ".join(g.label for g in block.groups))
        seeds: dict[str, dict[str, list[str]]] = {}
        for group in block.groups:
            for run in group.runs:
                seeds.setdefault(canonical(run.seed), {}).setdefault(
                    str(run.fingerprint), []).append(group.label)
        for seed, fps in sorted(seeds.items()):
            if len(fps) > 1:
                detail = "; ".join(f"{fp}: {', '.join(sorted(ls))}" for fp, ls in sorted(
                    fps.items()))
                warnings.append(f"seed {seed}: groups were evaluated on different data "
                                f"(data fingerprints {detail}); paired tests skip pairs whose "
                                "fingerprints differ")
    return blocks, warnings
