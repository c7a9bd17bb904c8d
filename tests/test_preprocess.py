"""Built-in preprocessing steps (recframe_preprocess), tested without the plugin manager."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset
from recframe_preprocess.binarize import build_binarize
from recframe_preprocess.clean import build_dedup, build_drop_invalid
from recframe_preprocess.kcore import build_kcore
from recframe_preprocess.normalize import build_normalize

CONF = Path(__file__).resolve().parents[1] / "conf"


def cfg(**kw):
    return OmegaConf.create(kw)


def make(rows, columns=("user_id", "item_id", "rating", "timestamp"), index=None, **kw):
    df = pd.DataFrame(rows, columns=list(columns))
    if index is not None:
        df.index = index
    return Dataset(df, **kw)


def run_pure(step, ds):
    """Apply ``step`` and check that the input dataset is left unchanged."""
    before = copy.deepcopy(ds.interactions)
    items = None if ds.items is None else ds.items.copy(deep=True)
    out = step(ds)
    pd.testing.assert_frame_equal(ds.interactions, before)
    if items is not None:
        pd.testing.assert_frame_equal(ds.items, items)
    assert out is not ds
    return out


# -- drop_invalid ----------------------------------------------------------


def test_drop_invalid_drops_null_ids_and_non_finite_values():
    ds = make(
        [
            ["u1", "i1", 5.0, 10.0],
            [None, "i1", 5.0, 11.0],
            ["u2", None, 4.0, 12.0],
            ["u2", "i2", np.nan, 13.0],
            ["u2", "i3", np.inf, 14.0],
            ["u3", "i1", 3.0, -np.inf],
            ["u3", "i2", 2.0, np.nan],
            ["u3", "i3", 1.0, 15.0],
        ],
        index=[10, 11, 12, 13, 14, 15, 16, 17],
    )
    out = run_pure(build_drop_invalid(cfg(name="drop_invalid")), ds)
    assert list(out.interactions.index) == [10, 17]
    assert list(out.interactions["user_id"]) == ["u1", "u3"]


def test_drop_invalid_without_optional_columns_and_with_datetimes():
    ds = make([["a", "x"], ["b", None]], columns=("user_id", "item_id"))
    assert list(build_drop_invalid(cfg(name="drop_invalid"))(ds).interactions.index) == [0]
    ts = pd.to_datetime(["2020-01-01", None, "2020-01-03"])
    ds = Dataset(pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 1, 1], "timestamp": ts}))
    assert list(build_drop_invalid(cfg(name="drop_invalid"))(ds).interactions.index) == [0, 2]


def test_drop_invalid_rejects_parameters():
    with pytest.raises(ConfigError, match="unknown key 'threshold'"):
        build_drop_invalid(cfg(name="drop_invalid", threshold=1))


# -- dedup -----------------------------------------------------------------


def test_dedup_keeps_latest_by_timestamp_ties_last_occurrence():
    ds = make(
        [
            ["u1", "i1", 1.0, 30],  # 0: latest for (u1, i1)
            ["u1", "i1", 2.0, 10],  # 1
            ["u1", "i2", 3.0, 5],  # 2: tie with 3 ...
            ["u1", "i2", 4.0, 5],  # 3: ... last occurrence wins
            ["u2", "i1", 5.0, 1],  # 4: unique
            ["u1", "i1", 6.0, 20],  # 5
        ],
        index=[100, 101, 102, 103, 104, 105],
    )
    out = run_pure(build_dedup(cfg(name="dedup")), ds).interactions
    assert list(out.index) == [100, 103, 104]
    assert list(out["rating"]) == [1.0, 4.0, 5.0]


def test_dedup_without_timestamps_keeps_last_occurrence():
    ds = make(
        [["u1", "i1", 1.0], ["u1", "i1", 2.0], ["u2", "i1", 3.0], ["u1", "i1", 4.0]],
        columns=("user_id", "item_id", "rating"),
    )
    out = run_pure(build_dedup(cfg(name="dedup")), ds).interactions
    assert list(out.index) == [2, 3]
    assert list(out["rating"]) == [3.0, 4.0]


# -- binarize --------------------------------------------------------------


def test_binarize_keeps_positives_as_one():
    ds = make(
        [["u", "a", 5.0, 1], ["u", "b", 3.5, 2], ["v", "a", 4.0, 3], ["v", "b", np.nan, 4]],
        index=[7, 8, 9, 10],
    )
    out = run_pure(build_binarize(cfg(name="binarize")), ds).interactions
    assert list(out.index) == [7, 9]
    assert out["rating"].tolist() == [1.0, 1.0]
    assert out["rating"].dtype == np.float64
    out = build_binarize(cfg(name="binarize", threshold=3))(ds).interactions
    assert list(out.index) == [7, 8, 9]


def test_binarize_keep_negatives_labels_every_row():
    ds = make([["u", "a", 5.0, 1], ["u", "b", 2.0, 2], ["v", "a", 4.0, 3]])
    out = run_pure(build_binarize(cfg(name="binarize", keep_negatives=True)), ds).interactions
    assert list(out.index) == [0, 1, 2]
    assert out["rating"].tolist() == [1.0, 0.0, 1.0]


def test_binarize_errors():
    with pytest.raises(ConfigError, match=r"'binarize': threshold must be a finite number.*'abc'"):
        build_binarize(cfg(name="binarize", threshold="abc"))
    with pytest.raises(ConfigError, match="keep_negatives must be true or false"):
        build_binarize(cfg(name="binarize", keep_negatives="yes"))
    with pytest.raises(ConfigError, match="Did you mean 'threshold'"):
        build_binarize(cfg(name="binarize", treshold=4))
    implicit = make([["u", "a"]], columns=("user_id", "item_id"))
    assert build_binarize(cfg(name="binarize"))(implicit) is implicit  # implicit: kept
    low = make([["u", "a", 1.0, 1]])
    with pytest.raises(DataError, match="removed every interaction"):
        build_binarize(cfg(name="binarize"))(low)


# -- kcore -----------------------------------------------------------------


def naive_kcore(df: pd.DataFrame, user_min: int, item_min: int) -> pd.DataFrame:
    while True:
        uc = df["user_id"].value_counts()
        ic = df["item_id"].value_counts()
        good_users = {u for u, c in uc.items() if c >= user_min}
        good_items = {i for i, c in ic.items() if c >= item_min}
        kept = df[df["user_id"].isin(good_users) & df["item_id"].isin(good_items)]
        if len(kept) == len(df):
            return kept
        df = kept


def test_kcore_cascades_to_a_fixed_point():
    # u3 has 1 row -> removed; then item c has 1 row -> removed; then u2 has 1 row -> removed
    rows = [
        ["u1", "a"], ["u1", "b"],
        ["u2", "a"], ["u2", "c"],
        ["u3", "c"],
        ["u4", "a"], ["u4", "b"],
    ]
    ds = make(rows, columns=("user_id", "item_id"), index=range(10, 17))
    out = run_pure(build_kcore(cfg(name="kcore", user_min=2, item_min=2)), ds).interactions
    assert list(out.index) == [10, 11, 15, 16]


def test_kcore_matches_naive_reference_and_is_idempotent():
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({
        "user_id": rng.zipf(1.6, n) % 300,
        "item_id": rng.zipf(1.4, n) % 200,
        "rating": rng.integers(1, 6, n).astype(float),
    })
    df.index = rng.permutation(n) + 1000  # a non-trivial index must survive
    ds = Dataset(df)
    step = build_kcore(cfg(name="kcore", user_min=5, item_min=4))
    out = run_pure(step, ds)
    ref = naive_kcore(df, 5, 4)
    assert 0 < len(out) < n
    pd.testing.assert_frame_equal(out.interactions, ref)
    again = step(out)
    pd.testing.assert_frame_equal(again.interactions, out.interactions)
    assert out.interactions["user_id"].value_counts().min() >= 5
    assert out.interactions["item_id"].value_counts().min() >= 4


def test_kcore_defaults_and_errors():
    step = build_kcore(cfg(name="kcore"))
    ds = make([["u", "a"]] * 5, columns=("user_id", "item_id"))
    assert len(step(ds)) == 5  # 5/5 is enough with the defaults
    with pytest.raises(DataError, match="removed every interaction"):
        step(make([["u", "a"]] * 4, columns=("user_id", "item_id")))
    with pytest.raises(ConfigError, match="user_min must be an integer >= 0, got -1"):
        build_kcore(cfg(name="kcore", user_min=-1))
    with pytest.raises(ConfigError, match="item_min must be an integer"):
        build_kcore(cfg(name="kcore", item_min=2.5))


# -- normalize ---------------------------------------------------------------


def test_normalize_minmax_and_zscore_on_interactions():
    ds = make([["u", "a", 1.0, 10], ["u", "b", 3.0, 20], ["v", "a", 5.0, 30]], index=[4, 5, 6])
    out = run_pure(build_normalize(cfg(name="normalize", columns=["rating"])), ds).interactions
    assert out["rating"].tolist() == [0.0, 0.5, 1.0]
    assert list(out.index) == [4, 5, 6]
    assert out["timestamp"].tolist() == [10, 20, 30]
    out = build_normalize(
        cfg(name="normalize", columns=["rating", "timestamp"], method="zscore")
    )(ds).interactions
    z = np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)  # population std of [1, 3, 5] is sqrt(8/3)
    np.testing.assert_allclose(out["rating"], z)
    np.testing.assert_allclose(out["timestamp"], z)


def test_normalize_items_frame_constant_column_and_nan():
    items = pd.DataFrame(
        {"year": [1990, 2000, np.nan, 2010], "const": [7.0, 7.0, 7.0, 7.0], "g": list("abcd")},
        index=pd.Index(["a", "b", "c", "d"], name="item_id"),
    )
    ds = make([["u", "a", 1.0, 1]], items=items)
    step = build_normalize(cfg(name="normalize", columns=["year", "const"], target="items"))
    out = run_pure(step, ds)
    assert out.interactions is ds.interactions
    np.testing.assert_allclose(out.items["year"], [0.0, 0.5, np.nan, 1.0])
    assert out.items["const"].tolist() == [0.0] * 4
    zstep = build_normalize(
        cfg(name="normalize", columns=["const"], target="items", method="zscore")
    )
    assert zstep(ds).items["const"].tolist() == [0.0] * 4


def test_normalize_errors():
    ds = make([["u", "a", 1.0, 1]])
    with pytest.raises(DataError, match=r"\['price'\] not in the interactions frame.*'rating'"):
        build_normalize(cfg(name="normalize", columns=["price"]))(ds)
    with pytest.raises(DataError, match="has no users feature frame"):
        build_normalize(cfg(name="normalize", columns=["age"], target="users"))(ds)
    with pytest.raises(DataError, match="not numeric"):
        build_normalize(cfg(name="normalize", columns=["user_id"]))(ds)
    with pytest.raises(ConfigError, match="method must be one of minmax, zscore"):
        build_normalize(cfg(name="normalize", columns=["rating"], method="l2"))
    with pytest.raises(ConfigError, match="target must be one of"):
        build_normalize(cfg(name="normalize", columns=["rating"], target="item"))
    with pytest.raises(ConfigError, match="columns must be a non-empty list"):
        build_normalize(cfg(name="normalize"))


# -- configs and registration ----------------------------------------------

BUILDERS = {
    "drop_invalid": build_drop_invalid,
    "dedup": build_dedup,
    "binarize": build_binarize,
    "kcore": build_kcore,
    "normalize": build_normalize,
}


@pytest.mark.parametrize(
    ("choice", "names"),
    [
        ("implicit", ["dedup", "binarize"]),
        ("none", []),
        ("implicit_5core", ["dedup", "binarize", "kcore"]),
    ],
)
def test_preprocess_configs_compose_and_build(choice, names):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        conf = compose(overrides=[f"+preprocess={choice}"])
    assert [step.name for step in conf.preprocess] == names
    grid = [[f"u{u}", f"i{i}", 5.0, 10 * u + i] for u in range(5) for i in range(5)]
    ds = make([*grid, ["u0", "i0", 5.0, 0], ["u9", "i0", 2.0, 0]])  # a repeat and a low rating
    for step in conf.preprocess:
        ds = BUILDERS[step.name](step)(ds)
    assert len(ds) == (27 if choice == "none" else 25)


def test_plugin_manager_registers_the_steps():
    from recframe.plugin import PluginManager

    pm = PluginManager()
    for name in BUILDERS:
        assert name in pm.preprocessors
        assert pm.preprocessors.plugin_of(name) == "preprocess"
        assert pm.preprocessors.get(name).build is BUILDERS[name]


def test_dedup_and_binarize_keep_labeled_impressions():
    """A click log's repeated impressions and unclicked rows are data: both steps keep
    every row of a labeled dataset (and drop repeats of an unlabeled one)."""
    import pandas as pd
    from omegaconf import OmegaConf

    from recframe.api import Dataset
    from recframe_preprocess.binarize import build_binarize
    from recframe_preprocess.clean import build_dedup

    rows = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [5, 5, 6, 5],
                         "label": [0, 1, 0, 1], "rating": [2.0, 5.0, 1.0, 4.0]})
    ds = Dataset(rows)
    assert len(build_dedup(OmegaConf.create({}))(ds)) == 4
    assert len(build_binarize(OmegaConf.create({"threshold": 4.0}))(ds)) == 4
    unlabeled = Dataset(rows.drop(columns="label"))
    assert len(build_dedup(OmegaConf.create({}))(unlabeled)) == 3
    assert len(build_binarize(OmegaConf.create({"threshold": 4.0}))(unlabeled)) == 2
