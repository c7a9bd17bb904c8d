"""Fuzzing config overrides: a run ends with results or a recframe error, nothing else.

Hypothesis picks a key of one config group (dataset, preprocess, split, model,
metrics, optim, trainer, callbacks, logger, evaluation) and a value of the right or a
wrong type (ints including negative and huge ones, floats including NaN and inf,
booleans, null, unicode text, lists), composes the config as ``recframe run`` would,
and runs it on a tiny synthetic problem in a forked child (so a hang is caught by a
timeout). Allowed outcomes: ``ok``, or a :class:`~recframe.errors.RecframeError`.
A raw exception, a crash or a hang fails the test. The fast suite runs
``FAST_EXAMPLES``; ``-m slow`` runs ``SLOW_EXAMPLES`` (``RECFRAME_FUZZ_SCALE``
multiplies both). Found cases replay from the committed database
(tests/.hypothesis-db, see tests/hypothesis_db.py).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as _hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from omegaconf import DictConfig, ListConfig, OmegaConf

from tests.fault_harness import run_child
from tests.hypothesis_db import DATABASE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork")

FAST_EXAMPLES, SLOW_EXAMPLES = 12, 150
BASE = ["dataset=synthetic", "dataset.n_users=40", "dataset.n_items=30", "preprocess=none",
        "model=bpr", "logger=none", "metrics.ks=[10]", "trainer.max_epochs=1"]
GROUPS = ("dataset", "preprocess", "split", "model", "metrics", "optim", "trainer",
          "callbacks", "logger", "evaluation")
#: keys whose large values mean legitimately long or large work, not a bug: fuzzed
#: with wrong types and small numbers only
BOUNDED = ("max_epochs", "min_epochs", "n_users", "n_items", "embedding_dim", "batch_size",
           "num_negatives", "patience", "mean_per_user", "min_per_user", "dim", "n_clusters",
           "max_steps", "num_workers", "limit_", "log_every", "hidden", "ks", "max_seq_len")
#: keys that make Lightning start more processes: its DDP launcher re-executes the
#: command line per rank, which in this forked pytest child is pytest itself (rank 1
#: fails, Lightning kills the group); multi-process runs are tested from the CLI in
#: tests/test_distributed.py. Fuzzed with values that keep one process.
ONE_PROCESS = ("trainer.devices", "trainer.num_nodes")
FUZZ_SCALE = int(os.environ.get("RECFRAME_FUZZ_SCALE", "1"))


def _keys() -> list[str]:
    from recframe.hydra_app import compose_config

    cfg = compose_config(BASE)
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, DictConfig):
            for k in node.keys():  # noqa: SIM118 - keys with ??? values too
                walk(node._get_node(k), f"{prefix}.{k}")
        elif isinstance(node, ListConfig) and prefix.split(".")[0] == "preprocess":
            for i, item in enumerate(node):
                walk(item, f"{prefix}[{i}]")
        else:
            keys.append(prefix)

    for group in GROUPS:
        walk(cfg._get_node(group), group)
    return [k.lstrip(".") for k in keys if "[" not in k]


KEYS = _keys()

text = st.text(st.characters(whitelist_categories=("L", "N", "Zs"),
                             blacklist_characters="'\"\\"), max_size=12)
scalars = st.one_of(
    st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=32), text)


def _fmt(value: object) -> str:
    """The value as Hydra's override grammar writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return f"'{value}'"


@st.composite
def overrides(draw) -> str:
    key = draw(st.sampled_from(KEYS))
    leaf = key.rsplit(".", 1)[-1]
    pool = scalars
    if any(leaf.startswith(b) for b in BOUNDED):
        pool = st.one_of(st.integers(-2, 3), st.booleans(), st.none(), text,
                         st.floats(allow_nan=True, allow_infinity=True, width=32))
    if key in ONE_PROCESS:
        value = draw(st.one_of(st.integers(-3, 1), st.booleans(), st.none(), text,
                               st.floats(allow_nan=True, allow_infinity=True, width=32)))
        return f"{key}={_fmt(value)}"
    value = draw(st.one_of(pool, st.lists(pool, max_size=3)))
    return f"{key}={_fmt(value)}"


def event(name: str) -> None:
    """Hypothesis's ``event``, a no-op when called outside a Hypothesis test."""
    if currently_in_test_context():
        _hypothesis_event(name)


def check_override(override: str, tmp: Path) -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from recframe.hydra_app import compose_config

    try:
        cfg = compose_config([*BASE, override])
    except (HydraException, OmegaConfBaseException):
        event("rejected by Hydra's grammar")
        return
    run_dir = tmp / f"run{abs(hash(override))}"
    code, outcome = run_child(cfg, run_dir, timeout=120)
    assert code == 0, f"{override}: the run crashed (exit {code})"
    kind = outcome.split("\n", 1)[0]
    if outcome == "ok":
        event("ran")
        return
    assert kind.startswith("recframe."), f"{override}: raw {outcome[:600]}"
    event(f"error {kind.rsplit('.', 1)[-1]}")


def _fuzz(n: int) -> settings:
    return settings(max_examples=n * FUZZ_SCALE, deadline=None, database=DATABASE,
                    suppress_health_check=list(HealthCheck))


@_fuzz(FAST_EXAMPLES)
@given(override=overrides())
def test_fuzzed_override_runs_or_is_a_recframe_error(override, tmp_path_factory):
    check_override(override, tmp_path_factory.mktemp("fuzz"))


@pytest.mark.slow
@_fuzz(SLOW_EXAMPLES)
@given(override=overrides())
def test_fuzzed_override_runs_or_is_a_recframe_error_many(override, tmp_path_factory):
    check_override(override, tmp_path_factory.mktemp("fuzz"))


def test_every_group_has_fuzzable_keys():
    assert {k.split(".")[0] for k in KEYS} >= set(GROUPS) - {"preprocess", "logger"}
    assert OmegaConf.is_list(OmegaConf.create({"a": []}).a)


def test_the_base_config_runs(tmp_path):
    """Without this, every fuzzed example could fail for the same reason."""
    from recframe.hydra_app import compose_config

    code, outcome = run_child(compose_config([*BASE, "seed=1"]), tmp_path / "base")
    assert (code, outcome) == (0, "ok"), outcome


@pytest.mark.slow
def test_every_key_with_eight_hostile_values():
    """tests/fuzz_sweep.py: 69 keys x 8 values, each run ok or a recframe error."""
    import io

    from tests.fuzz_sweep import sweep

    log = io.StringIO()
    runs, raw, _ = sweep(log)
    print(log.getvalue().splitlines()[-1])
    assert runs > 400 and raw == [], raw
