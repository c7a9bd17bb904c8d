"""Nothing lost, nothing leaked: properties of the data path over random interaction tables.

Hypothesis generates small tables (int or string ids, optional ratings, timestamps
with many ties, repeated user-item pairs, shuffled non-contiguous index labels) and
checks what every run relies on:

* each splitter is a partition: every row in exactly one part, values and index kept;
* after ``dedup`` no (user, item) pair of valid/test is also in train;
* ``temporal``: nothing in train is as late as the first held-out timestamp;
* ``leave_one_out``: exactly each eligible user's last events by time are held out;
* ``kcore`` reaches a fixed point that meets both thresholds (and is the maximal one);
* ``encode``: ``user_ids[codes]`` / ``item_ids[codes]`` give back the raw ids;
* the same seed gives the same metrics, end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from recframe.api import DataError, Dataset, Split
from recframe.data.encode import encode
from recframe_preprocess.clean import build_dedup
from recframe_preprocess.kcore import build_kcore
from recframe_splitters.leave_one_out import build_leave_one_out
from recframe_splitters.random_split import build_random
from recframe_splitters.temporal import build_temporal

PURE = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def cfg(**kw):
    return OmegaConf.create(kw)


# --------------------------------------------------------------------------- strategy


@st.composite
def tables(draw, timestamps: bool | None = None, min_rows: int = 1, max_rows: int = 60
           ) -> Dataset:
    """A random interaction table: ``timestamps`` True/False forces the column, None draws."""
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 10))
    rows = draw(st.lists(
        st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1),
                  st.integers(0, 5), st.integers(1, 5)),
        min_size=min_rows, max_size=max_rows))
    u, i, t, r = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    string_ids = draw(st.booleans())
    data: dict[str, object] = {
        # string ids are not zero-padded, so their sort order differs from the numbers'
        "user_id": np.array([f"u{x}" for x in u * 7], dtype=object) if string_ids else u * 7,
        "item_id": np.array([f"i{x}" for x in i * 3], dtype=object) if string_ids else i * 3 + 1,
    }
    if draw(st.booleans()):
        data["rating"] = r.astype("float64")
    if timestamps if timestamps is not None else draw(st.booleans()):
        data["timestamp"] = t * 10 + 1000  # range 6: ties are the rule
    labels = draw(st.permutations(range(len(rows))))
    index = np.asarray(labels, dtype=np.int64) * 3 + 5  # shuffled, not contiguous
    return Dataset(pd.DataFrame(data, index=index), name="random")


random_cfgs = st.builds(
    lambda r, seed: cfg(name="random", ratios=r, seed=seed),
    st.sampled_from([[0.8, 0.1, 0.1], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5],
                     [0.6, 0.0, 0.4], [0.34, 0.33, 0.33]]),
    st.integers(0, 2**31 - 1))
temporal_cfgs = st.builds(
    lambda r: cfg(name="temporal", ratios=r),
    st.sampled_from([[0.8, 0.1, 0.1], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5],
                     [0.7, 0.0, 0.3]]))
loo_cfgs = st.builds(lambda t, v: cfg(name="leave_one_out", n_test=t, n_valid=v),
                     st.integers(1, 3), st.integers(0, 2))


# --------------------------------------------------------------------------- helpers


def check_partition(ds: Dataset, split: Split) -> None:
    """Every row in exactly one part, with its index label, values and relative order."""
    df = ds.interactions
    parts = [split.train, split.valid, split.test]
    labels = np.concatenate([p.interactions.index.to_numpy() for p in parts])
    assert len(labels) == len(df)
    assert not pd.Index(labels).has_duplicates
    assert set(labels) == set(df.index)
    position = pd.Series(np.arange(len(df)), index=df.index)
    for p in parts:
        got = p.interactions
        assert list(got.columns) == list(df.columns)
        pd.testing.assert_frame_equal(got, df.loc[got.index])
        assert np.all(np.diff(position.loc[got.index].to_numpy()) > 0)  # original order
        assert p.items is ds.items and p.users is ds.users


def pairs(ds: Dataset) -> set[tuple]:
    df = ds.interactions
    return set(zip(df["user_id"], df["item_id"], strict=True))


def apply_split(split_cfg, ds: Dataset) -> Split | None:
    builders = {"random": build_random, "temporal": build_temporal,
                "leave_one_out": build_leave_one_out}
    try:
        return builders[split_cfg.name](split_cfg)(ds)
    except DataError as exc:
        # temporal only: every timestamp ties at or after the first cut
        assert split_cfg.name == "temporal" and "train would be empty" in str(exc)
        ts = ds.interactions["timestamp"]
        assert (ts == ts.min()).sum() >= 2
        return None


# --------------------------------------------------------------------------- splitters


@PURE
@given(ds=tables(), split_cfg=random_cfgs)
def test_random_split_is_a_partition(ds, split_cfg):
    split = apply_split(split_cfg, ds)
    check_partition(ds, split)
    # every user keeps at least one training row
    assert set(split.train.interactions["user_id"]) == set(ds.interactions["user_id"])


@PURE
@given(ds=tables(timestamps=True), split_cfg=temporal_cfgs)
def test_temporal_split_is_a_partition_and_nothing_later_is_in_train(ds, split_cfg):
    split = apply_split(split_cfg, ds)
    if split is None:
        return
    check_partition(ds, split)
    tr, va, te = (p.interactions["timestamp"] for p in (split.train, split.valid, split.test))
    assert len(tr) > 0
    held_out = pd.concat([va, te])
    if len(held_out):
        assert tr.max() < held_out.min()  # the cut: nothing in train at or after it
    if len(va) and len(te):
        assert va.max() < te.min()


@PURE
@given(ds=tables(timestamps=True), split_cfg=loo_cfgs)
def test_leave_one_out_holds_out_exactly_the_last_events(ds, split_cfg):
    split = apply_split(split_cfg, ds)
    check_partition(ds, split)
    n_test, n_valid = split_cfg.n_test, split_cfg.n_valid
    df = ds.interactions.assign(_pos=np.arange(len(ds.interactions)))
    want_test, want_valid = set(), set()
    for _, events in df.groupby("user_id", sort=False):
        ordered = events.sort_values(["timestamp", "_pos"]).index.tolist()  # ties: row order
        if len(ordered) < n_test + n_valid + 1:
            continue  # too short: the whole history stays in train
        want_test |= set(ordered[len(ordered) - n_test:])
        want_valid |= set(ordered[len(ordered) - n_test - n_valid:len(ordered) - n_test])
    assert set(split.test.interactions.index) == want_test
    assert set(split.valid.interactions.index) == want_valid
    # by time, per user: train <= valid <= test
    for part_a, part_b in ((split.train, split.valid), (split.valid, split.test),
                           (split.train, split.test)):
        a = part_a.interactions.groupby("user_id")["timestamp"].max()
        b = part_b.interactions.groupby("user_id")["timestamp"].min()
        common = a.index.intersection(b.index)
        assert (a[common] <= b[common]).all()


@PURE
@given(ds=tables(), split_cfg=st.one_of(random_cfgs, temporal_cfgs, loo_cfgs))
def test_no_test_pair_is_in_train_after_dedup(ds, split_cfg):
    if split_cfg.name != "random" and not ds.has_timestamps:
        ds = ds.with_interactions(ds.interactions.assign(timestamp=1000))
    deduped = build_dedup(cfg(name="dedup"))(ds)
    assert not deduped.interactions.duplicated(["user_id", "item_id"]).any()
    assert pairs(deduped) == pairs(ds)  # dedup loses no pair
    split = apply_split(split_cfg, deduped)
    if split is None:
        return
    check_partition(deduped, split)
    train = pairs(split.train)
    assert not train & pairs(split.valid)
    assert not train & pairs(split.test)
    assert not pairs(split.valid) & pairs(split.test)


# --------------------------------------------------------------------------- kcore


def naive_kcore(df: pd.DataFrame, user_min: int, item_min: int) -> pd.DataFrame:
    while True:
        uc, ic = df["user_id"].value_counts(), df["item_id"].value_counts()
        kept = df[df["user_id"].map(uc).ge(user_min) & df["item_id"].map(ic).ge(item_min)]
        if len(kept) == len(df):
            return kept
        df = kept


@PURE
@given(ds=tables(max_rows=80), user_min=st.integers(0, 5), item_min=st.integers(0, 5))
def test_kcore_is_a_fixed_point_meeting_the_thresholds(ds, user_min, item_min):
    step = build_kcore(cfg(name="kcore", user_min=user_min, item_min=item_min))
    reference = naive_kcore(ds.interactions, user_min, item_min)
    if len(reference) == 0:
        with pytest.raises(DataError, match="removed every interaction"):
            step(ds)
        return
    once = step(ds)
    twice = step(once)
    pd.testing.assert_frame_equal(twice.interactions, once.interactions)
    out = once.interactions
    assert out["user_id"].value_counts().min() >= user_min
    assert out["item_id"].value_counts().min() >= item_min
    pd.testing.assert_frame_equal(out, ds.interactions.loc[out.index])  # rows kept as they were
    pd.testing.assert_frame_equal(out, reference)  # and it is the maximal such core


# --------------------------------------------------------------------------- encode


def decoded(data, part: str) -> list[tuple]:
    ev = data.events[part]
    return sorted(zip(data.user_ids[ev.users], data.item_ids[ev.items], strict=True), key=repr)


def raw_pairs(df: pd.DataFrame) -> list[tuple]:
    return sorted(zip(df["user_id"], df["item_id"], strict=True), key=repr)


@PURE
@given(ds=tables(), split_cfg=st.one_of(random_cfgs, loo_cfgs))
def test_encode_decode_round_trip(ds, split_cfg):
    if split_cfg.name != "random" and not ds.has_timestamps:
        ds = ds.with_interactions(ds.interactions.assign(timestamp=1000))
    split = apply_split(split_cfg, ds)
    data = encode(split)
    train = split.train.interactions
    # train: every interaction, decoded, is the raw one (multiset, as encoded order differs)
    assert decoded(data, "train") == raw_pairs(train)
    assert len(data.user_ids) == data.info.n_users == train["user_id"].nunique()
    assert data.user_ids.is_unique and data.item_ids.is_unique
    assert set(data.item_ids) == set(ds.interactions["item_id"])
    string_ids = isinstance(ds.interactions["user_id"].iloc[0], str)
    for ids in (data.user_ids, data.item_ids):
        assert all(isinstance(x, str) for x in ids) if string_ids else \
            pd.api.types.is_integer_dtype(ids.dtype)
    # valid/test: the rows of users with a training history, decoded; the rest counted
    users = set(train["user_id"])
    for part in ("valid", "test"):
        df = split.parts()[part].interactions
        kept = df[df["user_id"].isin(users)]
        assert decoded(data, part) == raw_pairs(kept)
        assert data.meta["dropped_eval_interactions_without_train_user"][part] == \
            len(df) - len(kept)
    # per-user histories are time-ordered
    if data.info.has_timestamps:
        for part in ("train", "valid", "test"):
            ev = data.events[part]
            order = np.lexsort((ev.timestamps, ev.users))
            assert np.array_equal(order, np.arange(len(order)))


# --------------------------------------------------------------------------- end to end


def test_same_seed_gives_identical_metrics(compose, tmp_path):
    overrides = ("model=bpr", "dataset.n_users=120", "dataset.n_items=80",
                 "trainer.max_epochs=3", "seed=7")
    runs = []
    for name in ("a", "b"):
        results = run_experiment_dir(compose(*overrides), tmp_path / name)
        per_user = pd.read_parquet(tmp_path / name / "per_user.parquet")
        runs.append((results, per_user))
    (ra, pa), (rb, pb) = runs
    assert ra["status"] == rb["status"] == "ok"
    assert ra["metrics"] == rb["metrics"]
    assert ra["metrics"]["test"]  # not vacuous
    assert ra["best_epoch"] == rb["best_epoch"]
    assert ra["protocol"]["data_fingerprint"] == rb["protocol"]["data_fingerprint"]
    pd.testing.assert_frame_equal(pa, pb)


def run_experiment_dir(cfg, run_dir):
    from recframe.runner import run_experiment

    run_experiment(cfg, run_dir)
    return json.loads((run_dir / "results.json").read_text())
