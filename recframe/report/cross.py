"""The report's summary across protocols: the baseline check and the cross-dataset ranks.

Both read one metric (the ``summary metric``, e.g. ``ndcg@10``) from the per-protocol
tables :func:`recframe.report.tables.block_table` already computed, so every number
here is one the protocol sections show in full, with its test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from recframe.report.collect import Block, Run


def short_protocol(block: Block) -> str:
    """``dataset / split`` (plus ``sampled`` or ``CTR``) naming a block in one cell."""
    sig = block.signature
    name = f"{sig['dataset'].get('name')} / {sig['split'].get('name', '?')}"
    if block.ctr:
        name += " / CTR"
    elif block.sampled:
        name += f" / sampled {sig['candidates'].get('num_negatives')}"
    return name


def arm_names(block: Block) -> dict[str, str]:
    """Group label -> the name an arm has across protocols: its model name when that is
    unique in the block, else the group's label."""
    counts: dict[str, int] = {}
    for g in block.groups:
        counts[g.model_name] = counts.get(g.model_name, 0) + 1
    return {g.label: g.model_name if counts[g.model_name] == 1 else g.label
            for g in block.groups}


@dataclass(frozen=True)
class BaselineCheck:
    """One arm's comparison with its protocol's baseline on the summary metric."""

    protocol: str
    arm: str
    baseline: str
    mean: float
    baseline_mean: float
    mean_diff: float
    p_t_holm: float
    p_wilcoxon_holm: float
    beats: bool
    higher_is_better: bool = True

    def _paired(self) -> str:
        """The paired per-user difference, when the reported means do not show it (a
        metric such as GAUC weights users by impressions; the test weighs them alike)."""
        reported = self.mean - self.baseline_mean
        if not self.higher_is_better:
            reported = -reported  # mean_diff is oriented: > 0 is better
        if (reported > 0) == (self.mean_diff > 0) or math.isnan(self.mean_diff):
            return ""
        raw = self.mean_diff if self.higher_is_better else -self.mean_diff
        return f"; per-user paired difference {raw:+.4f}"

    def line(self, metric: str, alpha: float) -> str:
        if math.isnan(self.p_t_holm):
            why = "no paired test (no shared seeds or per-user values)"
        elif self.mean_diff <= 0:
            why = (f"worse than or equal to {self.baseline} ({self.mean:.4f} vs "
                   f"{self.baseline_mean:.4f}{self._paired()}, Holm p={self.p_t_holm:.2g})")
        else:
            why = (f"ahead of {self.baseline} ({self.mean:.4f} vs {self.baseline_mean:.4f}"
                   f"{self._paired()}) but not significantly (Holm-corrected paired t-test "
                   f"p={self.p_t_holm:.2g} >= {alpha:g})")
        return f"**FLAG** {self.arm} on {self.protocol}: does not beat its baseline on " \
               f"{metric}: {why}"


def baseline_checks(blocks: Sequence[Block], frames: Sequence[pd.DataFrame], metric: str,
                    alpha: float) -> list[BaselineCheck]:
    """Every non-baseline arm of every block that has a baseline, tested on ``metric``."""
    out: list[BaselineCheck] = []
    for block, frame in zip(blocks, frames, strict=True):
        if frame.empty or "metric" not in frame:
            continue
        rows = frame[frame["metric"] == metric]
        if rows.empty or not str(rows["baseline"].iloc[0]):
            continue
        base_label = str(rows["baseline"].iloc[0])
        names = arm_names(block)
        base = rows[rows["group"] == base_label].iloc[0]
        if base["n_seeds"] == 0:  # the baseline has no value here (n/a under a cold split)
            continue
        higher = bool(base["higher_is_better"])
        for _, row in rows.iterrows():
            if row["group"] == base_label or row["n_seeds"] == 0:
                continue
            diff = float(row["vs_baseline_mean_diff"])
            p_t = float(row["vs_baseline_p_t_holm"])
            better = diff > 0 if higher else diff < 0
            out.append(BaselineCheck(
                protocol=short_protocol(block), arm=names[row["group"]],
                baseline=names[base_label], mean=float(row["mean"]),
                baseline_mean=float(base["mean"]), mean_diff=diff if higher else -diff,
                p_t_holm=p_t, p_wilcoxon_holm=float(row["vs_baseline_p_wilcoxon_holm"]),
                beats=bool(better and p_t < alpha), higher_is_better=higher))
    return out


def finished_rows(blocks: Sequence[Block], frames: Sequence[pd.DataFrame], metric: str
                  ) -> Iterator[tuple[Block, pd.DataFrame]]:
    """Each block with its table's rows of ``metric`` for arms with at least one seed
    (blocks without such rows are skipped)."""
    for block, frame in zip(blocks, frames, strict=True):
        if frame.empty or "metric" not in frame:
            continue
        rows = frame[(frame["metric"] == metric) & (frame["n_seeds"] > 0)]
        if not rows.empty:
            yield block, rows


def rank_table(blocks: Sequence[Block], frames: Sequence[pd.DataFrame], metric: str,
               ) -> tuple[list[str], list[list[str]]]:
    """Rank of each arm on ``metric`` within each protocol (1 = best; ties share the
    better rank) and its mean rank over the protocols it ran under, best first."""
    columns: list[str] = []
    ranks: dict[str, dict[str, tuple[float, float]]] = {}
    for block, rows in finished_rows(blocks, frames, metric):
        column = short_protocol(block)
        columns.append(column)
        names = arm_names(block)
        higher = bool(rows["higher_is_better"].iloc[0])
        ranked = rows["mean"].rank(ascending=not higher, method="min")
        for (_, row), rank in zip(rows.iterrows(), ranked, strict=True):
            arm = _without_protocol_keys(names[row["group"]])
            ranks.setdefault(arm, {})[column] = (float(rank), float(row["mean"]))
    columns.sort()  # dataset, then split: one dataset's protocols side by side
    mean_rank = {arm: sum(r for r, _ in by.values()) / len(by) for arm, by in ranks.items()}
    header = ["model", *columns, "mean rank"]
    body = []
    for arm in sorted(ranks, key=lambda a: (mean_rank[a], a)):
        cells = [arm]
        for column in columns:
            got = ranks[arm].get(column)
            cells.append(f"{got[0]:g} ({got[1]:.4f})" if got else "–")
        cells.append(f"{mean_rank[arm]:.2f}")
        body.append(cells)
    return header, body


def failed_arm_flags(failed: Sequence[Run]) -> list[str]:
    """One ``**FLAG**`` line per failed arm (model, dataset, split): a run that did not
    finish cannot beat its baseline either, so the summary says so next to the others."""
    by_arm: dict[tuple[str, str, str], list[Run]] = {}
    for run in failed:
        cfg = run.config
        key = (run.model_name, str((cfg.get("dataset") or {}).get("name", "?")),
               str((cfg.get("split") or {}).get("name", "?")))
        by_arm.setdefault(key, []).append(run)
    lines = []
    for (model, dataset, split), runs in sorted(by_arm.items()):
        error = runs[0].results.get("error") or {}
        message = str(error.get("message", runs[0].status)).splitlines()[0][:160]
        seeds = ", ".join(str(r.seed) for r in runs)
        lines.append(f"**FLAG** {model} on {dataset} / {split}: the run failed (seed {seeds}; "
                     f"{error.get('type', 'error')}: {message})")
    return lines


def _split_kind(protocol: str) -> str:
    """The protocol without its dataset: ``"ml-100k / random"`` -> ``"random"``."""
    return protocol.split(" / ", 1)[1] if " / " in protocol else protocol


def _without_protocol_keys(arm: str) -> str:
    """An arm's name without ``dataset.*=``/``split.*=`` tokens: those name the protocol,
    so the same arm on two datasets compares equal."""
    return " ".join(t for t in arm.split()
                    if not t.startswith(("dataset.", "split.")) or "=" not in t)


def missing_arm_flags(blocks: Sequence[Block], frames: Sequence[pd.DataFrame], metric: str,
                      failed: Sequence[Run] = ()) -> list[str]:
    """One ``**FLAG**`` line per arm that ran under a split on one dataset but has no
    finished run under the same split on another dataset of the report (a failed run is
    flagged by :func:`failed_arm_flags` instead): a comparison across datasets should
    not hide an arm that was never run."""
    present: dict[str, set[str]] = {}  # protocol -> arms with a finished run
    for block, rows in finished_rows(blocks, frames, metric):
        names = arm_names(block)
        present.setdefault(short_protocol(block), set()).update(
            _without_protocol_keys(names[g]) for g in rows["group"])
    failed_at = {(r.model_name, f"{(r.config.get('dataset') or {}).get('name', '?')} / "
                  f"{(r.config.get('split') or {}).get('name', '?')}") for r in failed}
    lines = []
    for protocol in sorted(present):
        kind = _split_kind(protocol)
        elsewhere: dict[str, list[str]] = {}
        for other, arms in present.items():
            if other != protocol and _split_kind(other) == kind:
                for arm in arms:
                    elsewhere.setdefault(arm, []).append(other.split(" / ")[0])
        for arm in sorted(set(elsewhere) - present[protocol]):
            if (arm, protocol) in failed_at:
                continue
            lines.append(f"**FLAG** {arm} on {protocol}: not run (it ran under {kind} on "
                         f"{', '.join(sorted(elsewhere[arm]))})")
    return lines


def fewer_seed_notes(blocks: Sequence[Block], frames: Sequence[pd.DataFrame],
                     metric: str) -> list[str]:
    """Arms that ran with fewer seeds than the most any arm of their protocol ran with:
    their intervals are wider or absent, which a reader should know."""
    notes = []
    for block, rows in finished_rows(blocks, frames, metric):
        most = int(rows["n_seeds"].max())
        names = arm_names(block)
        short = sorted(f"{names[g]} ({int(n)})" for g, n in zip(rows["group"], rows["n_seeds"],
                                                              strict=True) if n < most)
        if short:
            notes.append(f"{short_protocol(block)}: {', '.join(short)} of {most} seeds")
    return notes
