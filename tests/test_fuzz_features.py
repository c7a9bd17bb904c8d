"""Fuzzing feature files: item/user feature CSVs load and encode, or fail clearly.

Hypothesis writes a well-formed interactions file and a hostile item (or user)
feature file: random separators of the values, duplicate and missing keys, missing
values, huge/negative/NaN/inf numbers, mixed types in a column, unicode, BOMs,
duplicate header names, empty lines. Loading (``recframe_datasets`` ``csv``) and
encoding with typed fields (``recframe.data.encode``, vocabularies and statistics
fitted on train) must give a Dataset / RecData or a :class:`RecframeError` naming
the feature file; never another exception, and never a change in the number of
interactions (features never add or drop an interaction).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from recframe.api import RecframeError, Split
from recframe.data.encode import encode
from recframe_datasets.csv_loader import load_csv

SCALE = int(os.environ.get("RECFRAME_FUZZ_SCALE", "1"))
FAST_EXAMPLES, SLOW_EXAMPLES = 40, 400
N_USERS, N_ITEMS = 6, 8
INTERACTIONS = "user_id,item_id,rating,timestamp\n" + "".join(
    f"{u},{i},{1 + (u * i) % 5},{u * 100 + i}\n" for u in range(N_USERS) for i in range(N_ITEMS)
    if (u + i) % 3)
N_ROWS = INTERACTIONS.count("\n") - 1

VALUES = ["1", "-3", "0.5", "1e400", "-1e400", "nan", "NaN", "inf", "-inf", "", " ",
          "99999999999999999999", "Action|Comedy", "a", "é", "用户", "NULL", "true", "7",
          '"x,y"', "\ufeff", "1,5", "None", "-0"]
HEADERS = ["genre", "year", "title", "tags", "genre", "", "\ufefftitle", "用户", "item_id",
           "price"]


@st.composite
def feature_files(draw) -> tuple[str, dict]:
    owner = draw(st.sampled_from(["item", "user"]))
    n = N_ITEMS if owner == "item" else N_USERS
    key = "item_id" if owner == "item" else "user_id"
    names = draw(st.one_of(st.lists(st.sampled_from(HEADERS[:4]), min_size=1, max_size=4,
                                    unique=True),
                           st.lists(st.sampled_from(HEADERS), min_size=1, max_size=4)))
    valid = st.permutations([str(i) for i in range(n)])
    ids = draw(st.one_of(
        valid.map(list), valid.map(lambda p: list(p[:max(1, len(p) // 2)])),
        st.lists(st.one_of(st.integers(-2, n + 2).map(str),
                           st.sampled_from(["", "x", "007", "1.0"])),
                 min_size=0, max_size=n + 3)))
    cell = st.one_of(st.sampled_from(VALUES), st.floats(allow_nan=True, allow_infinity=True)
                     .map(repr), st.integers(-(2**70), 2**70).map(str),
                     st.text(st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters="\r\n\x00"), max_size=5))
    rows = [",".join([i, *draw(st.lists(cell, min_size=len(names), max_size=len(names)))])
            for i in ids]
    rows += draw(st.lists(st.just(""), max_size=2))  # empty lines
    bom = draw(st.sampled_from(["", "", "\ufeff"]))
    text = bom + ",".join([key, *names]) + "\n" + "\n".join(rows) + "\n"
    fields = draw(st.sampled_from([
        None,
        {"genre": {"kind": "multi_categorical", "sep": "|"}},
        {"year": {"kind": "numeric"}},
        {"title": {"kind": "text"}},
        {"tags": {"kind": "categorical"}},
    ]))
    return text, {"owner": owner, "fields": fields}


def check_feature_file(text: str, spec: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inter = Path(tmp) / "ratings.csv"
        inter.write_text(INTERACTIONS)
        feats = Path(tmp) / "features.csv"
        feats.write_text(text, encoding="utf-8")
        owner = spec["owner"]
        cfg = OmegaConf.create({"name": "csv", "path": str(inter),
                                f"{owner}_features": {"path": str(feats)}})
        try:
            ds = load_csv(cfg)
        except RecframeError as err:
            assert str(feats) in str(err) or "features" in str(err), err
            event(f"load: {type(err).__name__}")
            return
        assert len(ds.interactions) == N_ROWS
        frame = ds.items if owner == "item" else ds.users
        assert frame is not None and frame.index.is_unique
        empty = ds.with_interactions(ds.interactions.iloc[:0])
        try:
            data = encode(Split(ds, empty, empty), fields=spec["fields"], with_fields=True)
        except RecframeError as err:
            event(f"encode: {type(err).__name__}")
            return
        assert len(data.events["train"].users) == N_ROWS
        for field in data.info.fields:
            assert field.name
        event("loaded and encoded")


def _fuzz(n: int) -> settings:
    return settings(max_examples=n * SCALE, deadline=None,
                    suppress_health_check=list(HealthCheck))


@_fuzz(FAST_EXAMPLES)
@given(case=feature_files())
def test_feature_file_loads_and_encodes_or_fails_clearly(case):
    check_feature_file(*case)


@pytest.mark.slow
@_fuzz(SLOW_EXAMPLES)
@given(case=feature_files())
def test_feature_file_loads_and_encodes_or_fails_clearly_many(case):
    check_feature_file(*case)


def test_the_interactions_file_is_well_formed():
    assert N_ROWS > 0 and np.isfinite(N_ROWS)
