"""Built-in splitters (recframe_splitters), tested without the plugin manager."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset, Split
from recframe_splitters.leave_one_out import build_leave_one_out
from recframe_splitters.random_split import build_random, holdout_sizes
from recframe_splitters.temporal import build_temporal

CONF = Path(__file__).resolve().parents[1] / "conf"


def cfg(**kw):
    return OmegaConf.create(kw)


def random_frame(n_users=200, seed=0, max_rows=40, ties=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_rows + 1, n_users)
    users = np.repeat(np.arange(n_users), sizes)
    n = len(users)
    ts = rng.integers(0, 50 if ties else 10**9, n)
    df = pd.DataFrame({
        "user_id": users.astype(str),
        "item_id": rng.integers(0, 500, n),
        "rating": rng.integers(1, 6, n).astype(float),
        "timestamp": ts,
    })
    perm = rng.permutation(n)
    df = df.iloc[perm]
    df.index = perm * 3 + 7  # shuffled, non-contiguous index labels
    return df


def check_partition(ds: Dataset, split: Split) -> None:
    parts = [split.train, split.valid, split.test]
    idx = np.concatenate([p.interactions.index.to_numpy() for p in parts])
    assert len(idx) == len(ds.interactions)
    assert not pd.Index(idx).has_duplicates
    assert set(idx) == set(ds.interactions.index)
    for p in parts:
        # same rows, same values, same feature frames
        pd.testing.assert_frame_equal(p.interactions, ds.interactions.loc[p.interactions.index])
        assert p.items is ds.items and p.users is ds.users


def run_split(step, ds):
    before = copy.deepcopy(ds.interactions)
    split = step(ds)
    pd.testing.assert_frame_equal(ds.interactions, before)
    check_partition(ds, split)
    return split


def part_index(split: Split) -> tuple[list, list, list]:
    return tuple(sorted(p.interactions.index) for p in (split.train, split.valid, split.test))


# -- random ----------------------------------------------------------------


def test_random_per_user_ratios_within_rounding():
    ds = Dataset(random_frame())
    split = run_split(build_random(cfg(name="random", ratios=[0.7, 0.1, 0.2], seed=1)), ds)
    assert split.name == "random"
    n = ds.interactions.groupby("user_id").size()
    n_train = split.train.interactions.groupby("user_id").size().reindex(n.index, fill_value=0)
    n_valid = split.valid.interactions.groupby("user_id").size().reindex(n.index, fill_value=0)
    n_test = split.test.interactions.groupby("user_id").size().reindex(n.index, fill_value=0)
    assert (n_train >= 1).all()
    big = n >= 10  # the at-least-one rules only matter for small users
    assert (abs(n_test - n * 0.2)[big] <= 0.5 + 1e-9).all()
    assert (abs(n_valid - n * 0.1)[big] <= 0.5 + 1e-9).all()
    exp_valid, exp_test = holdout_sizes(n.to_numpy(), 0.1, 0.2)
    np.testing.assert_array_equal(n_valid.to_numpy(), exp_valid)
    np.testing.assert_array_equal(n_test.to_numpy(), exp_test)


def test_random_small_users():
    np.testing.assert_array_equal(holdout_sizes(np.array([1, 2, 3]), 0.1, 0.1)[1], [0, 1, 1])
    np.testing.assert_array_equal(holdout_sizes(np.array([1, 2, 3]), 0.1, 0.1)[0], [0, 0, 1])
    # test ratio 0: the second row goes to valid
    np.testing.assert_array_equal(holdout_sizes(np.array([1, 2]), 0.2, 0.0)[0], [0, 1])
    np.testing.assert_array_equal(holdout_sizes(np.array([1, 2]), 0.2, 0.0)[1], [0, 0])
    df = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": [1, 1, 2]})
    split = run_split(build_random(cfg(name="random")), Dataset(df))
    assert list(split.train.interactions["user_id"]) == ["a", "b"]
    assert list(split.test.interactions["user_id"]) == ["b"]
    assert len(split.valid) == 0


def test_random_is_deterministic_and_seed_dependent():
    ds = Dataset(random_frame(seed=5))
    a = part_index(build_random(cfg(name="random", seed=0))(ds))
    b = part_index(build_random(cfg(name="random", seed=0))(ds))
    c = part_index(build_random(cfg(name="random", seed=1))(ds))
    assert a == b
    assert a != c
    assert [len(x) for x in a] == [len(x) for x in c]  # sizes depend on counts only


@pytest.mark.parametrize(
    ("ratios", "match"),
    [
        ([0.8, 0.1], "list of 3 non-negative numbers"),
        ([0.8, 0.3, 0.1], r"sums to 1\.2"),
        ([1.2, -0.1, -0.1], "non-negative"),
        (["a", 0.1, 0.1], "non-negative numbers"),
        ("0.8,0.1,0.1", "non-negative numbers"),
    ],
)
def test_random_bad_ratios(ratios, match):
    with pytest.raises(ConfigError, match=f"split 'random': ratios must be .*{match}"):
        build_random(cfg(name="random", ratios=ratios))
    with pytest.raises(ConfigError, match="split 'temporal': ratios"):
        build_temporal(cfg(name="temporal", ratios=ratios))


def test_random_config_errors():
    with pytest.raises(ConfigError, match="seed must be an integer"):
        build_random(cfg(name="random", seed="x"))
    with pytest.raises(ConfigError, match="unknown key 'ratio'.*Did you mean 'ratios'"):
        build_random(cfg(name="random", ratio=[0.8, 0.1, 0.1]))
    with pytest.raises(DataError, match="no interactions to split"):
        build_random(cfg(name="random"))(Dataset(pd.DataFrame({"user_id": [], "item_id": []})))


# -- temporal --------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_temporal_cut_orders_parts_in_time(ties):
    ds = Dataset(random_frame(seed=2, ties=ties))
    split = run_split(build_temporal(cfg(name="temporal", ratios=[0.8, 0.1, 0.1])), ds)
    tr, va, te = (p.interactions["timestamp"] for p in (split.train, split.valid, split.test))
    assert len(tr) and len(va) and len(te)
    assert tr.max() < va.min() <= va.max() < te.min()
    n = len(ds)
    if not ties:  # distinct timestamps: exact sizes
        assert (len(va), len(te)) == (round(n * 0.1), round(n * 0.1))
    else:  # ties go to the later part: test may grow, train may shrink
        assert len(te) >= round(n * 0.1)


def test_temporal_exact_small_example_with_tie_at_the_cut():
    df = pd.DataFrame({
        "user_id": list("abcdefghij"),
        "item_id": range(10),
        "timestamp": [1, 2, 3, 4, 5, 6, 7, 8, 8, 9],
    }, index=range(100, 110))
    split = run_split(build_temporal(cfg(name="temporal", ratios=[0.6, 0.2, 0.2])), Dataset(df))
    # the test cut is ts 8 (2nd latest): the tied row 107 joins test, and valid is the
    # two rows before the first test row
    assert part_index(split) == ([100, 101, 102, 103, 104], [105, 106], [107, 108, 109])


def test_temporal_errors():
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [1.0, 2.0]})
    msg = (
        r"split 'temporal' needs a timestamp column; your data has columns "
        r"\['user_id', 'item_id', 'rating'\]; use split=random"
    )
    with pytest.raises(DataError, match=msg):
        build_temporal(cfg(name="temporal"))(Dataset(df))
    same = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 2, 3], "timestamp": [5, 5, 5]})
    with pytest.raises(DataError, match="train would be empty"):
        build_temporal(cfg(name="temporal"))(Dataset(same))
    missing = same.assign(timestamp=[1.0, np.nan, 3.0])
    with pytest.raises(DataError, match="1 interaction.*missing timestamp.*drop_invalid"):
        build_temporal(cfg(name="temporal"))(Dataset(missing))


# -- leave_one_out -----------------------------------------------------------


def test_leave_one_out_holds_out_each_users_last_events():
    df = random_frame(seed=4)
    ds = Dataset(df)
    split = run_split(build_leave_one_out(cfg(name="leave_one_out")), ds)
    ordered = df.assign(row=np.arange(len(df))).sort_values(["user_id", "timestamp", "row"])
    sizes = df.groupby("user_id").size()
    eligible = sizes[sizes >= 3].index
    last = ordered.groupby("user_id").tail(1)
    second = ordered.groupby("user_id").nth(-2)
    assert sorted(split.test.interactions.index) == sorted(
        last[last["user_id"].isin(eligible)].index
    )
    assert sorted(split.valid.interactions.index) == sorted(
        second[second["user_id"].isin(eligible)].index
    )
    assert split.test.interactions["user_id"].is_unique
    short = sizes[sizes < 3].index
    assert len(short) > 0
    assert split.train.interactions["user_id"].isin(short).sum() == sizes[short].sum()


def test_leave_one_out_ties_by_row_order_and_parameters():
    df = pd.DataFrame({
        "user_id": ["a"] * 5 + ["b"] * 2,
        "item_id": [1, 2, 3, 4, 5, 1, 2],
        "timestamp": [5, 1, 9, 9, 3, 1, 2],
    }, index=[10, 11, 12, 13, 14, 15, 16])
    split = run_split(build_leave_one_out(cfg(name="leave_one_out")), Dataset(df))
    # user a by time: 11, 14, 10, 12, 13 (12 and 13 tie: row order) ; b is too short
    assert part_index(split) == ([10, 11, 14, 15, 16], [12], [13])
    split = run_split(
        build_leave_one_out(cfg(name="leave_one_out", n_test=2, n_valid=0)), Dataset(df)
    )
    assert part_index(split) == ([10, 11, 14, 15, 16], [], [12, 13])
    split = build_leave_one_out(cfg(name="leave_one_out", n_valid=0))(Dataset(df))
    assert part_index(split) == ([10, 11, 12, 14, 15], [], [13, 16])


def test_leave_one_out_errors():
    df = pd.DataFrame({"user_id": [1], "item_id": [1]})
    with pytest.raises(DataError, match="split 'leave_one_out' needs a timestamp column"):
        build_leave_one_out(cfg(name="leave_one_out"))(Dataset(df))
    with pytest.raises(ConfigError, match="n_test must be an integer >= 1, got 0"):
        build_leave_one_out(cfg(name="leave_one_out", n_test=0))
    with pytest.raises(ConfigError, match="n_valid must be an integer >= 0"):
        build_leave_one_out(cfg(name="leave_one_out", n_valid=-1))


# -- property tests ------------------------------------------------------------

frames = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 4)), min_size=1, max_size=60
).map(lambda rows: Dataset(pd.DataFrame(
    rows, columns=["user_id", "item_id", "timestamp"], index=np.arange(len(rows)) * 2 + 1
)))
ratios = st.sampled_from([[0.8, 0.1, 0.1], [0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])


@settings(max_examples=30, deadline=None)
@given(ds=frames, r=ratios, seed=st.integers(0, 2**31))
def test_random_partitions_property(ds, r, seed):
    split = build_random(cfg(name="random", ratios=r, seed=seed))(ds)
    check_partition(ds, split)
    users = set(ds.interactions["user_id"])
    assert set(split.train.interactions["user_id"]) == users


@settings(max_examples=30, deadline=None)
@given(ds=frames, r=ratios)
def test_temporal_partitions_property(ds, r):
    try:
        split = build_temporal(cfg(name="temporal", ratios=r))(ds)
    except DataError as exc:  # only when all timestamps tie at the first cut
        assert "train would be empty" in str(exc)
        return
    check_partition(ds, split)
    tr, va, te = (p.interactions["timestamp"] for p in (split.train, split.valid, split.test))
    later = [s for s in (va, te) if len(s)]
    for a, b in zip([tr, *later], later, strict=False):
        assert a.max() < b.min()


@settings(max_examples=30, deadline=None)
@given(ds=frames, n_test=st.integers(1, 3), n_valid=st.integers(0, 2))
def test_leave_one_out_partitions_property(ds, n_test, n_valid):
    split = build_leave_one_out(cfg(name="leave_one_out", n_test=n_test, n_valid=n_valid))(ds)
    check_partition(ds, split)
    assert (split.test.interactions.groupby("user_id").size() == n_test).all()


# -- configs and registration ----------------------------------------------

BUILDERS = {
    "random": build_random, "temporal": build_temporal, "leave_one_out": build_leave_one_out,
}


@pytest.mark.parametrize("choice", list(BUILDERS))
def test_split_configs_compose_and_build(choice):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        conf = compose(overrides=[f"+split={choice}", "+seed=3"])
    assert conf.split.name == choice
    if choice == "random":
        assert conf.split.seed == 3
    split = BUILDERS[choice](conf.split)(Dataset(random_frame(n_users=20)))
    assert len(split.test) > 0


def test_plugin_manager_registers_the_splitters():
    from recframe.plugin import PluginManager

    pm = PluginManager()
    for name, build in BUILDERS.items():
        assert name in pm.splitters
        assert pm.splitters.plugin_of(name) == "splitters"
        assert pm.splitters.get(name).build is build


def test_random_split_as_one_pool_of_rows():
    """per_user=false (click logs): the ratios hold over all rows, not within users."""
    import numpy as np
    import pandas as pd
    from omegaconf import OmegaConf

    from recframe.api import Dataset
    from recframe_splitters.random_split import build_random

    df = pd.DataFrame({"user_id": np.r_[np.zeros(990, int), np.arange(1, 11)],
                       "item_id": np.arange(1000)})
    cfg = OmegaConf.create({"ratios": [0.8, 0.1, 0.1], "seed": 3, "per_user": False})
    split = build_random(cfg)(Dataset(df))
    parts = [set(p.interactions["item_id"]) for p in (split.train, split.valid, split.test)]
    assert [len(p) for p in parts] == [800, 100, 100]
    assert set.union(*parts) == set(range(1000)) and not (parts[0] & parts[2])
    # one-row users land in held-out parts too (per-user splitting would keep them in train)
    singles = set(range(990, 1000))
    assert singles - parts[0]
    again = build_random(cfg)(Dataset(df))
    assert set(again.test.interactions["item_id"]) == parts[2]
    with pytest.raises(Exception, match="per_user must be true or false"):
        build_random(OmegaConf.create({"ratios": [0.8, 0.1, 0.1], "per_user": "no"}))
