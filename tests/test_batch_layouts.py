"""docs/batch_layouts.md against the code: every batch a model can receive is built from
small data through the run's data module, and its keys, dtypes and shapes must be the
ones the page's tables give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from recframe.api import TrainFormat
from recframe.runner import build_experiment

DOC = Path(__file__).resolve().parents[1] / "docs" / "batch_layouts.md"
SMALL = ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=40", "preprocess=none",
         "logger=none", "evaluation.batch_size=16"]
#: a model of each train format, and its batch size
MODELS = {"pairs": "bpr", "points": "neumf", "sequences": "sasrec", "matrix": "multvae",
          "fit": "ease"}
BATCH = 8


def tables() -> dict[str, list[tuple[str, str, str]]]:
    """``<!-- layout: NAME -->`` -> the rows (key, dtype, shape) of the table after it."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"<!-- layout: (\w+) -->", line)
        if marker:
            current = marker.group(1)
            out[current] = []
            continue
        if current is None:
            continue
        if not line.startswith("|"):
            if out[current]:
                current = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("key", "kind") or set(cells[0]) <= {"-"}:
            continue
        out[current].append((cells[0].strip("`"), cells[1], cells[2].strip("`")))
    return out


def expected_shape(shape: str, sizes: dict[str, int]) -> tuple[int, ...]:
    """``[B, L+1]`` -> the sizes, with the symbols of ``sizes`` substituted."""
    dims = [d.strip() for d in shape.strip("[]").split(",")]
    return tuple(int(eval(d, {"__builtins__": {}}, sizes)) for d in dims)  # noqa: S307


def check(layout: str, batch: dict, sizes: dict[str, int], optional: set[str] = frozenset()
          ) -> None:
    rows = tables()[layout]
    documented = {key for key, _, _ in rows}
    assert set(batch) <= documented, f"{layout}: keys not in the doc: {set(batch) - documented}"
    missing = documented - set(batch) - set(optional)
    assert not missing, f"{layout}: documented keys not in the batch: {missing}"
    for key, dtype, shape in rows:
        if key not in batch or dtype == "dict":
            continue
        value = batch[key]
        assert isinstance(value, torch.Tensor), f"{layout}.{key}: {type(value)}"
        assert str(value.dtype) == f"torch.{dtype}", f"{layout}.{key}: {value.dtype} != {dtype}"
        assert tuple(value.shape) == expected_shape(shape, sizes), (
            f"{layout}.{key}: shape {tuple(value.shape)}, doc says {shape} with {sizes}")


def experiment(model: str, *overrides: str):
    from recframe.hydra_app import compose_config

    cfg = compose_config([*SMALL, f"model={model}", f"model.batch_size={BATCH}", *overrides])
    return build_experiment(cfg)


def test_every_train_format_has_a_table():
    assert set(tables()) >= {f.value for f in TrainFormat} | {"context", "fields"}


@pytest.mark.parametrize("fmt", sorted(MODELS))
def test_train_batch_matches_the_doc(fmt):
    exp = experiment(MODELS[fmt])
    assert exp.model.train_format.value == fmt
    batch = exp.datamodule.make_train_set()[0]
    n_neg = int(getattr(exp.model, "num_negatives", 1))
    sizes = {"B": BATCH, "N": n_neg, "P": BATCH * (1 + n_neg),
             "L": int(getattr(exp.model, "max_seq_len", 0)),
             "nnz": len(batch.get("seen_rows", ()))}
    check(fmt, batch, sizes)
    if fmt == "sequences":
        seq = batch["seq"]
        assert bool(((seq >= 0).sum(1) >= 2).all())
        first = (seq >= 0).int().argmax(1)  # left padding: -1 only before the first item
        assert bool((seq >= 0).sum(1).eq(seq.shape[1] - first).all())
    if fmt == "matrix":  # the rows are the users' whole training rows
        train = exp.data.train
        users = batch["users"].numpy()
        assert len(batch["seen_rows"]) == train[users].nnz
        dense = torch.zeros(len(users), exp.data.info.n_items)
        dense[batch["seen_rows"], batch["seen_cols"]] = 1
        assert torch.equal(dense, torch.from_numpy(train[users].toarray()))


def test_labeled_batch_and_fields_match_the_doc():
    exp = experiment("lr", "dataset=synthetic_ctr", "dataset.n_users=50", "dataset.n_items=30",
                     "dataset.n_rows=600")
    batch = exp.datamodule.make_train_set()[0]
    check("labeled", batch, {"B": BATCH})
    kinds = {row[0]: row for row in tables()["fields"]}
    fields = {f.name: f for f in exp.data.info.fields if f.kind != "text"}
    assert set(batch["fields"]) == set(fields)
    for name, value in batch["fields"].items():
        _, dtype, shape = kinds[fields[name].kind]
        assert str(value.dtype) == f"torch.{dtype}", name
        assert value.shape[0] == BATCH and value.dim() == shape.count(",") + 1, name


@pytest.mark.parametrize("model,evaluation", [("bpr", "full"), ("sasrec", "sampled")])
def test_score_context_matches_the_doc(model, evaluation):
    exp = experiment(model, f"evaluation={evaluation}")
    users = exp.datamodule.eval_set("test")
    batch = users.__getitems__(list(range(16)))
    sizes = {"B": 16, "L": int(getattr(exp.model, "max_seq_len", 0)),
             "nnz": len(batch["seen_rows"]), "T": len(batch["truth_rows"]),
             "C": len(batch.get("candidate_rows", ()))}
    check("context", batch, sizes, optional={"seq", "candidate_rows", "candidate_cols"})
    assert ("seq" in batch) == (sizes["L"] > 0)
    assert ("candidate_rows" in batch) == (evaluation == "sampled")
    assert int(batch["seen_rows"].max()) < 16 and bool((batch["seen_rows"].diff() >= 0).all())
