"""Every fuzzable config key (tests/test_fuzz_config.py) with eight hostile values.

    python -m tests.fuzz_sweep            # prints one line per run, then the totals

Each run must end in results or a RecframeError (see tests/test_fuzz_config.py);
the totals line reads ``<runs> runs, <raw> raw, <hydra> rejected by Hydra's grammar``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.fault_harness import run_child
from tests.test_fuzz_config import BASE, KEYS, _fmt

VALUES: list[object] = [float("nan"), -1, "abc", None, [1], True, 0, 10**19]


def sweep(out=sys.stdout) -> tuple[int, list[str], int]:
    """(runs, overrides that ended in a raw exception, overrides Hydra rejected)."""
    from recframe.hydra_app import compose_config

    raw, rejected, runs = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for key in KEYS:
            for value in VALUES:
                override = f"{key}={_fmt(value)}"
                try:
                    cfg = compose_config([*BASE, override])
                except Exception:  # noqa: BLE001 - Hydra's own grammar errors
                    rejected += 1
                    continue
                runs += 1
                code, outcome = run_child(cfg, Path(tmp) / f"r{runs}", timeout=120)
                kind = outcome.split("\n", 1)[0]
                ok = code == 0 and (outcome == "ok" or kind.startswith("recframe."))
                if not ok:
                    raw.append(override)
                print("ok " if ok else "RAW", override, outcome[:120].replace("\n", " | "),
                      file=out, flush=True)
    print(f"{runs} runs, {len(raw)} raw, {rejected} rejected by Hydra's grammar", file=out)
    return runs, raw, rejected


if __name__ == "__main__":
    sys.exit(1 if sweep()[1] else 0)
