"""The recframe half of ``fuxictr_compare``: export a CTR split for FuxiCTR, or run recframe.

Runs in the project's ``.venv`` as its own process (so its peak RSS is its own)::

    python recframe_side.py export SPEC.json RESULT.json
    python recframe_side.py run SPEC.json RESULT.json

``export`` (SPEC: ``{out_dir, overrides}``) builds the experiment exactly as a
run with the same overrides does (:func:`labeled_parts`) and writes its labeled
rows (impressions) as ``OUT_DIR/{train,valid,test}.csv`` plus
``OUT_DIR/fields.json``, the field list ``run_fuxictr.py`` reads. Every value is
recframe's own encoding, so both frameworks see the very same inputs: a
categorical field's code as a string token (``0``, missing, as an empty cell);
a multi-valued field's non-zero codes joined by ``^`` (FuxiCTR's ``sequence``
type, mean-pooled by default like recframe's ``pooling: mean``); a numeric field's
normalized value (FuxiCTR is told not to normalize it again). FuxiCTR then
builds its own vocabularies from these tokens on the train part, so a code
unseen in train (recframe's OOV ``1``, only in valid/test) is FuxiCTR's OOV too.
Only the fields recframe's LR/FM/DeepFM/DCNv2 read are written: categorical,
multi-valued and numeric ones. Sequence fields (``hist``) feed DIN only (recframe's
``FieldEmbedding`` leaves them out), and FuxiCTR would pool them into one more
field vector, so they stay out; text fields are never batched.

``run`` (SPEC: ``{threads, run_dir, overrides}``) runs the experiment through the
real path (``recframe.testing.run`` -> ``recframe.runner.run_experiment``) with
``threads`` torch threads and records its ``results.json`` plus the peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEP = "^"
#: recframe field kinds -> FuxiCTR feature types (the kinds recframe's CTR models embed)
KINDS = {"categorical": "categorical", "multi_categorical": "sequence", "numeric": "numeric"}


def peak_rss_gib() -> float:
    """Peak resident set size of this process, in GiB (Linux ``ru_maxrss`` is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def labeled_parts(overrides: list[str]) -> tuple[Any, dict[str, Any], str]:
    """``(DataInfo, {part: LabeledRows}, data fingerprint)`` of the experiment the
    overrides describe, built as ``run_experiment`` builds it.

    The one place that knows where recframe keeps the labeled rows: the
    experiment's ``data`` (a ``RecData``) holds them in ``.labeled[part]`` (``labels``
    float32 0/1, ``fields`` {name: encoded array}).
    """
    from recframe.pipeline import fingerprint
    from recframe.runner import build_experiment
    from recframe.testing import compose

    data = build_experiment(compose(*overrides)).data
    if not data.labeled:
        raise SystemExit("the experiment has no labeled rows: use a click log "
                         "(dataset=ml-100k-ctr) and evaluation=ctr")
    return data.info, data.labeled, fingerprint(data)


def _tokens(codes: np.ndarray) -> np.ndarray:
    """Codes as string tokens; 0 (padding / missing) as the empty string."""
    out = codes.astype(str).astype(object)
    out[codes == 0] = ""
    return out


def _joined(codes: np.ndarray) -> list[str]:
    """Each row's non-zero codes joined by ``^`` (order kept; an all-padding row is "")."""
    tokens = _tokens(codes)
    return [SEP.join(t for t in row if t) for row in tokens]


def export(out_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Write the labeled rows of every part as CSV, and the FuxiCTR field list."""
    t = time.perf_counter()
    info, parts, fp = labeled_parts(overrides)
    specs = [f for f in info.fields if f.kind in KINDS]
    left_out = [f"{f.name} ({f.kind})" for f in info.fields if f.kind not in KINDS]
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, Any] = {}
    for part in ("train", "valid", "test"):
        rows = parts[part]
        columns: dict[str, Any] = {"label": rows.labels.astype(np.int64)}
        for f in specs:
            values = rows.fields[f.name]
            if f.kind == "categorical":
                columns[f.name] = _tokens(values)
            elif f.kind == "multi_categorical":
                columns[f.name] = _joined(values)
            else:
                columns[f.name] = values.astype(np.float64)
        pd.DataFrame(columns).to_csv(out_dir / f"{part}.csv", index=False)
        counts[part] = {"rows": len(rows), "clicks": int(rows.labels.sum()),
                        "missing": {f.name: int((rows.fields[f.name] == 0).all(axis=-1).sum()
                                                if rows.fields[f.name].ndim > 1 else
                                                (rows.fields[f.name] == 0).sum())
                                    for f in specs if f.kind != "numeric"}}
    fields = []
    for f in specs:
        entry: dict[str, Any] = {"name": f.name, "type": KINDS[f.kind]}
        if f.kind == "multi_categorical":
            entry.update(splitter=SEP, max_len=int(f.max_len), pooling=f.pooling)
        if f.kind == "numeric":
            entry["normalizer"] = None  # already normalized (on train) by recframe
        fields.append(entry)
    (out_dir / "fields.json").write_text(json.dumps({"label": "label", "fields": fields},
                                                    indent=2))
    return {"fingerprint": fp, "counts": counts, "fields": fields, "left_out": left_out,
            "recframe_fields": [{"name": f.name, "kind": f.kind, "vocab_size": f.vocab_size,
                                 "max_len": f.max_len, "pooling": f.pooling}
                                for f in info.fields],
            "seconds": round(time.perf_counter() - t, 3)}


def run(threads: int, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """One recframe experiment in this process; its results.json plus peak RSS."""
    import logging
    import warnings

    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from recframe.testing import run as run_recframe

    t = time.perf_counter()
    results = run_recframe(*overrides, run_dir=run_dir)
    return {
        "framework": "recframe",
        "threads": torch.get_num_threads(),
        "wall_seconds": round(time.perf_counter() - t, 3),
        "status": results["status"],
        "timings": results["timings"],
        "epochs_run": results.get("epochs_run"),
        "steps_per_execution": results.get("steps_per_execution"),
        "metrics": results["metrics"],
        "fingerprint": results["protocol"]["data_fingerprint"],
        "counts": results["protocol"]["counts"],
        "fields": results["protocol"].get("fields"),
        "peak_rss_gib": peak_rss_gib(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("export", "run"):
        raise SystemExit(__doc__)
    command, spec_path, result_path = argv
    spec = json.loads(Path(spec_path).read_text())
    if command == "export":
        out = export(Path(spec["out_dir"]), list(spec["overrides"]))
    else:
        threads = str(spec["threads"])
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, threads)
        out = run(int(threads), Path(spec["run_dir"]), list(spec["overrides"]))
    Path(result_path).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
