"""Click-log data sets (plugin ``recframe_datasets``): ml-100k-ctr, ctr_log, synthetic_ctr."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ITEM, LABEL, TIMESTAMP, USER, ConfigError, DataError, Dataset
from recframe.data import fields as core_fields
from recframe_datasets import ctr_fields, plugin
from recframe_datasets.synthetic_ctr import (
    SyntheticCTRParams,
    auc,
    bayes_optimal,
    binary_entropy,
    generate,
    population_auc,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RECFRAME_DATA_DIR", REPO.parent / "shared" / "data"))
ML_DIR = DATA / "ml-100k"
SAMPLES = DATA / "ctr-samples"
CONF = REPO / "conf" / "dataset"
needs_ml = pytest.mark.skipif(not (ML_DIR / "u.data").is_file(),
                              reason=f"MovieLens-100K not found at {ML_DIR}")
needs_samples = pytest.mark.skipif(not (SAMPLES / "criteo_sample.txt").is_file(),
                                   reason=f"CTR samples not found at {SAMPLES}")
CTR_NAMES = ("ml-100k-ctr", "ctr_log", "criteo", "avazu", "synthetic_ctr")


def cfg(**values):
    return OmegaConf.create(values)


def check_schema(ds: Dataset) -> list[dict]:
    """The declarations follow the spec: kinds/owners known, each non-sequence field a
    column of its owner's frame, labels 0/1 ints with both classes."""
    fields = ds.meta["fields"]
    frames = {"context": ds.interactions, "user": ds.users, "item": ds.items}
    for f in fields:
        assert f["kind"] in core_fields.FIELD_KINDS, f
        assert f["owner"] in core_fields.OWNERS, f
        assert set(f) <= set(ctr_fields.FIELD_KEYS), f
        if f["kind"] == "sequence":
            assert f["owner"] == "context" and f["shares"] == ITEM and f["max_len"] >= 1
        else:
            assert f["name"] in frames[f["owner"]].columns, f
        if f["kind"] == "numeric":
            assert f.get("normalize", "standard") in core_fields.NORMALIZATIONS
            assert pd.api.types.is_numeric_dtype(frames[f["owner"]][f["name"]])
    label = ds.interactions[LABEL]
    assert label.dtype == np.int64 and set(np.unique(label)) == {0, 1}
    assert ds.meta["fingerprint"]
    for frame, key in ((ds.users, USER), (ds.items, ITEM)):
        if frame is not None:
            assert frame.index.name == key and frame.index.is_unique
    return fields


def test_field_constants_match_the_core():
    assert set(ctr_fields.FIELD_KEYS) == set(core_fields.DECL_KEYS)
    assert ctr_fields.FIELD_KINDS == core_fields.FIELD_KINDS
    assert ctr_fields.OWNERS == core_fields.OWNERS
    assert ctr_fields.NORMALIZATIONS == core_fields.NORMALIZATIONS


def test_plugin_registers_the_click_logs():
    specs = []

    class Collect:
        def add(self, spec):
            specs.append(spec)

    plugin.recframe_register_datasets(Collect())
    names = {s.name: s for s in specs}
    for name in CTR_NAMES:
        assert name in names and names[name].description


@pytest.mark.parametrize("name", CTR_NAMES)
def test_config_files_name_registry_key_and_comment_every_key(name):
    path = CONF / f"{name}.yaml"
    assert OmegaConf.load(path).name == name
    for line in path.read_text().splitlines():
        if ":" in line.split("#")[0] and not line.lstrip().startswith("#"):
            assert "#" in line, f"{path.name}: uncommented key: {line!r}"


# --------------------------------------------------------------------------- ml-100k-ctr

def ml_ctr(**values):
    return plugin.load_ml100k_ctr(cfg(name="ml-100k-ctr", path=str(ML_DIR), download=False,
                                      **values))


@needs_ml
def test_ml100k_ctr_impressions_fields_and_meta():
    ds = ml_ctr()
    df = ds.interactions
    assert list(df.columns) == [USER, ITEM, LABEL, TIMESTAMP]  # no rating: it leaks the label
    assert len(df) == 100_000 and ds.meta["verified"] is True
    assert abs(df[LABEL].mean() - 0.55375) < 1e-9 and ds.meta["label_rate"] == df[LABEL].mean()
    fields = {f["name"]: f for f in check_schema(ds)}
    assert {n: (f["kind"], f["owner"]) for n, f in fields.items()} == {
        "age": ("numeric", "user"), "gender": ("categorical", "user"),
        "occupation": ("categorical", "user"), "zip_prefix": ("categorical", "user"),
        "genres": ("multi_categorical", "item"), "release_year": ("numeric", "item"),
        "title": ("text", "item"), "hist": ("sequence", "context")}
    assert fields["age"]["buckets"] == 8 and fields["hist"]["max_len"] == 20
    assert fields["genres"]["sep"] == "|" and fields["genres"]["max_len"] == 6
    assert ds.items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert ds.items.loc[1, "release_year"] == 1995 and ds.items.loc[1, "title"].startswith("Toy")
    assert ds.users.loc[1, "zip_prefix"] == "85" and ds.users.zip_prefix.nunique() == 111
    assert len(ds.users) == 943 and len(ds.items) == 1682


@needs_ml
def test_ml100k_ctr_options_change_labels_fields_and_fingerprint():
    base = ml_ctr()
    ds = ml_ctr(threshold=5, zip_prefix=3, age_buckets=0, hist_len=0)
    assert ds.interactions[LABEL].mean() < 0.3 and ds.users.zip_prefix.nunique() == 382
    fields = {f["name"]: f for f in check_schema(ds)}
    assert "hist" not in fields and fields["age"]["buckets"] == 0
    assert ds.meta["fingerprint"] != base.meta["fingerprint"]
    assert ml_ctr().meta["fingerprint"] == base.meta["fingerprint"]


@needs_ml
@pytest.mark.parametrize("values, match", [
    ({"threshold": 0}, "every label 1"),
    ({"threshold": 6}, "every label 0"),
    ({"threshold": "high"}, "dataset.threshold"),
    ({"zip_prefix": 0}, "dataset.zip_prefix"),
    ({"hist_len": -1}, "dataset.hist_len"),
    ({"treshold": 4}, "Did you mean 'threshold'"),
])
def test_ml100k_ctr_bad_config(values, match):
    with pytest.raises(ConfigError, match=match):
        ml_ctr(**values)


@needs_ml
def test_ml100k_ctr_declarations_parse_in_the_core_with_config_overrides():
    from recframe.data.field_encoding import declared_fields

    ds = ml_ctr(fields={"age": {"buckets": 0}})  # the key is accepted; recframe applies it
    assert {f["name"]: f for f in ds.meta["fields"]}["age"]["buckets"] == 8
    decls = {d.name: d for d in declared_fields(ds, {"age": {"buckets": 0}})}
    assert list(decls)[:2] == [USER, ITEM] and decls["age"].buckets == 0
    assert decls["genres"].kind == "multi_categorical" and decls["genres"].owner == "item"
    assert decls["hist"].shares == ITEM and decls["hist"].max_len == 20
    assert set(decls) == {USER, ITEM, *(f["name"] for f in ds.meta["fields"])}  # none inferred


# --------------------------------------------------------------------------- ctr_log

CRITEO = SAMPLES / "criteo_sample.txt"
AVAZU = SAMPLES / "avazu_sample.txt"
MOVIELENS = SAMPLES / "movielens_sample.txt"
ML_SAMPLE = dict(
    name="ctr_log", path=str(MOVIELENS), label="rating", label_threshold=4,
    user_column="user_id", item_column="movie_id", timestamp="timestamp",
    categorical=["gender", "age", "occupation", "zip"], multi_categorical={"genres": "|"},
    text=["title"], user_features=["gender", "age", "occupation", "zip"],
    item_features=["genres", "title"], hist_len=10)


def preset(name: str, **values) -> Dataset:
    """Load a preset through its YAML file, as `recframe run dataset=<name>` would."""
    conf = OmegaConf.load(CONF / f"{name}.yaml")
    conf.merge_with(values)
    return {"criteo": plugin.load_criteo, "avazu": plugin.load_avazu}[name](conf)


def log(**values) -> Dataset:
    return plugin.load_ctr_log(cfg(**{"name": "ctr_log", **values}))


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_samples
@pytest.mark.parametrize("name, md5", [
    ("criteo_sample.txt", "3b73e8dc06d0c13d783fa6aca2f12a23"),
    ("avazu_sample.txt", "4161073bccda5174c2a11aa7ab16d6fb"),
    ("movielens_sample.txt", "ab08162b458316ad41823c30ec4c4212")])
def test_sample_files_match_the_published_checksums(name, md5):
    from recframe_datasets.ctr_log import KNOWN_CHECKSUMS
    from recframe_datasets.fingerprint import md5_file

    assert KNOWN_CHECKSUMS[name] == md5 == md5_file(SAMPLES / name)


@needs_samples
def test_criteo_preset_reads_the_sample(monkeypatch):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(DATA))
    ds = preset("criteo")
    df = ds.interactions
    assert ds.name == "criteo" and len(df) == 200 and ds.meta["verified"] is True
    assert ds.meta["id_fields"] is False and ds.meta["ordered"] is True
    assert (df[USER] == 0).all() and (df[ITEM] == 0).all()
    assert ds.users is None and ds.items is None
    fields = check_schema(ds)
    numeric = [f for f in fields if f["kind"] == "numeric"]
    categorical = [f for f in fields if f["kind"] == "categorical"]
    assert [f["name"] for f in numeric] == [f"I{i}" for i in range(1, 14)]
    assert {f["normalize"] for f in numeric} == {"log"}
    assert [f["name"] for f in categorical] == [f"C{i}" for i in range(1, 27)]
    assert {f["min_count"] for f in categorical} == {10} and {f["owner"] for f in fields} == {
        "context"}
    assert df["I1"].dtype == np.float64 and df["I1"].isna().any() and (df["I2"] < 0).any()
    assert abs(ds.meta["label_rate"] - 0.245) < 1e-12  # 49 clicks in 200 rows
    assert df["C1"].iloc[0] == "05db9164" and df["C19"].isna().iloc[0]


@needs_samples
def test_criteo_header_less_tsv_reads_like_the_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(DATA))
    lines = CRITEO.read_text().splitlines()[1:]
    raw = write(tmp_path, "\n".join(line.replace(",", "\t") for line in lines) + "\n",
                "train.txt")
    ds = preset("criteo", path=str(raw), format="tsv", header=False)
    pd.testing.assert_frame_equal(ds.interactions, preset("criteo").interactions)
    assert ds.meta["verified"] is None  # not a known file name
    with pytest.raises(ConfigError, match="list every column in `dataset.names`"):
        preset("criteo", path=str(raw), format="tsv", header=False, numeric=["I1"])


@needs_samples
def test_avazu_preset_derives_hour_fields(monkeypatch):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(DATA))
    ds = preset("avazu")
    df = ds.interactions
    assert ds.meta["verified"] is True and ds.meta["id_fields"] is False
    assert "id" not in df.columns and "hour" not in df.columns and len(df) == 100
    assert abs(df[LABEL].mean() - ds.meta["label_rate"]) < 1e-12 and 0 < df[LABEL].mean() < 1
    # 14102100 = 2014-10-21 (a Tuesday), 00h UTC
    assert (df[TIMESTAMP] == 1413849600).all()
    assert (df["hour_of_day"] == 0).all() and (df["weekday"] == 1).all()
    fields = {f["name"]: f for f in check_schema(ds)}
    assert fields["hour_of_day"]["kind"] == fields["weekday"]["kind"] == "categorical"
    assert len(fields) == 23 and fields["device_ip"]["min_count"] == 5


def test_preset_yaml_files_match_the_python_presets(monkeypatch):
    from recframe_datasets.ctr_log import CONFIG_KEYS, PRESETS

    monkeypatch.setenv("RECFRAME_DATA_DIR", "/data")
    for name, values in PRESETS.items():
        conf = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"), resolve=True)
        assert conf["name"] == name and set(conf) == set(CONFIG_KEYS)
        assert conf["path"].startswith("/data/ctr-samples/")
        for key, value in values.items():
            assert conf[key] == value, (name, key)
    assert set(OmegaConf.load(CONF / "ctr_log.yaml")) == set(CONFIG_KEYS)


@needs_samples
def test_movielens_sample_with_users_items_and_history():
    ds = plugin.load_ctr_log(cfg(**ML_SAMPLE))
    df = ds.interactions
    assert list(df.columns) == [USER, ITEM, LABEL, TIMESTAMP]  # rating consumed by the label
    assert ds.meta["id_fields"] is True and "ordered" not in ds.meta
    assert list(ds.users.columns) == ["gender", "age", "occupation", "zip"]
    assert list(ds.items.columns) == ["genres", "title"]
    assert set(df[USER]) == set(ds.users.index) and set(df[ITEM]) == set(ds.items.index)
    raw = pd.read_csv(MOVIELENS)
    assert (df[LABEL].to_numpy() == (raw.rating >= 4).to_numpy()).all()
    fields = {f["name"]: f for f in check_schema(ds)}
    assert fields["genres"] == {"name": "genres", "kind": "multi_categorical", "owner": "item",
                                "sep": "|", "min_count": 1,
                                "max_len": int(raw.genres.str.count("[|]").max() + 1)}
    assert fields["age"]["owner"] == "user" and fields["title"]["kind"] == "text"
    assert fields["hist"] == {"name": "hist", "kind": "sequence", "owner": "context",
                              "shares": ITEM, "max_len": 10}


@needs_samples
def test_ctr_log_is_deterministic_and_passes_the_dataset_checks(monkeypatch):
    from recframe.testing import check_dataset

    monkeypatch.setenv("RECFRAME_DATA_DIR", str(DATA))
    check_dataset("ctr_log", cfg(**ML_SAMPLE))
    check_dataset("criteo", OmegaConf.load(CONF / "criteo.yaml"))
    a, b = plugin.load_ctr_log(cfg(**ML_SAMPLE)), plugin.load_ctr_log(cfg(**ML_SAMPLE))
    assert a.meta["fingerprint"] == b.meta["fingerprint"]
    c = plugin.load_ctr_log(cfg(**{**ML_SAMPLE, "label_threshold": 5}))
    assert c.meta["fingerprint"] != a.meta["fingerprint"]


HEADER = "label,n,c,tags\n"


def test_label_not_binary_names_file_line_and_values(tmp_path):
    path = write(tmp_path, HEADER + "0,1,a,x|y\n1,2,b,x\n2,3,c,y\n1,,a,\n")
    with pytest.raises(DataError) as err:
        log(path=str(path), numeric=["n"], categorical=["c"])
    msg = str(err.value)
    assert str(path) in msg and "line 4" in msg and "'2'" in msg
    assert "values found: '0', '1', '2'" in msg and "label_threshold" in msg


def test_label_threshold_turns_scores_into_labels(tmp_path):
    path = write(tmp_path, HEADER + "0,1,a,x|y\n1,2,b,x\n2,3,c,y\n5,,a,\n")
    ds = log(path=str(path), label_threshold=2, numeric=["n"], categorical=["c"],
             multi_categorical={"tags": "|"})
    assert ds.interactions[LABEL].tolist() == [0, 0, 1, 1]
    assert ds.interactions["n"].isna().tolist() == [False, False, False, True]
    assert {f["name"]: f.get("max_len") for f in ds.meta["fields"]}["tags"] == 2


def test_all_one_class_is_an_error(tmp_path):
    path = write(tmp_path, HEADER + "0,1,a,x\n0,2,b,x\n")
    with pytest.raises(DataError, match=r"every one of the 2 rows has label 0 \(column 'label'"):
        log(path=str(path))


@pytest.mark.parametrize("values, error, match", [
    ({"label": "lable"}, DataError, r"column 'lable' \(`dataset.label`\) not found.*"
                                    r"Did you mean 'label'"),
    ({"categorical": ["cc"]}, DataError, r"`dataset.categorical`\) not found.*Did you mean 'c'"),
    ({"numeric": ["c"]}, DataError, r"line 2: numeric column 'c' holds 'a'"),
    ({"multi_categorical": {"tags": None}}, ConfigError,
     r"'tags' holds strings \(e.g. 'x\|y'\) but has no separator.*\{tags: '\|'\}"),
    ({"multi_categorical": ["tags"]}, ConfigError, r"map each column to its separator"),
    ({"numeric": ["n"], "categorical": ["n"]}, ConfigError, "used twice"),
    ({"user_column": "c"}, ConfigError, "set both"),
    ({"user_column": "c", "item_column": "n", "hist_len": 5}, ConfigError,
     "needs a time order"),
    ({"hist_len": 5}, ConfigError, "needs `dataset.user_column`"),
    ({"categorical": "c"}, ConfigError, "must be a list of column names"),
    ({"normalize": "logg"}, ConfigError, "Did you mean 'log'"),
    ({"min_count": 0}, ConfigError, "min_count"),
    ({"lable": "label"}, ConfigError, "Did you mean 'label'"),
    ({"categorical": ["timestamp"]}, ConfigError, "reserves"),
    ({"user_features": ["c"]}, ConfigError, "needs `dataset.user_column`"),
    ({"hour_column": "c"}, DataError, r"line 2: `dataset.hour_column` 'c' holds 'a'; "
                                      r"expected YYMMDDHH"),
    ({"path": None}, ConfigError, "`dataset.path` is required"),
    ({"path": "nowhere.csv"}, DataError, "file not found"),
])
def test_ctr_log_bad_input(tmp_path, values, error, match):
    path = write(tmp_path, HEADER + "0,1,a,x|y\n1,2,b,x\n")
    with pytest.raises(error, match=match):
        log(**{"path": str(path), **values})


def test_user_feature_must_be_constant_per_user(tmp_path):
    path = write(tmp_path, "label,u,i,age\n0,1,10,20\n1,1,11,21\n")
    with pytest.raises(DataError, match=r"user_id 1 has several values of 'age' "
                                        r"\('20', '21'; lines \[2, 3\]\)"):
        log(path=str(path), user_column="u", item_column="i", categorical=["age"],
            user_features=["age"])
    ok = log(path=str(path), user_column="u", item_column="i", categorical=["age"])
    assert {f["name"]: f["owner"] for f in ok.meta["fields"]} == {"age": "context"}


# --------------------------------------------------------------------------- synthetic_ctr

SMALL = dict(n_users=200, n_items=80, n_rows=4000)


def test_synthetic_ctr_yaml_loads_with_schema_and_bayes_optimal():
    ds = plugin.load_synthetic_ctr(OmegaConf.load(CONF / "synthetic_ctr.yaml"))
    df = ds.interactions
    assert len(df) == 60_000 and df[USER].nunique() == 2000 and ds.name == "synthetic_ctr"
    assert list(df.columns) == [USER, ITEM, LABEL, TIMESTAMP, "device", "daypart"]
    assert df[TIMESTAMP].is_monotonic_increasing and df.index.equals(pd.RangeIndex(60_000))
    assert not df.groupby(USER)[TIMESTAMP].apply(lambda t: t.duplicated().any()).any()
    fields = {f["name"]: (f["kind"], f["owner"]) for f in check_schema(ds)}
    assert fields == {"segment": ("categorical", "user"), "region": ("categorical", "user"),
                      "category": ("categorical", "item"), "price": ("numeric", "item"),
                      "device": ("categorical", "context"), "daypart": ("categorical", "context"),
                      "hist": ("sequence", "context")}
    assert 0.1 < df[LABEL].mean() == ds.meta["label_rate"] < 0.4
    p = ds.meta["true_probability"]
    assert p.shape == (60_000,) and p.dtype == np.float64
    best = ds.meta["bayes_optimal"]
    assert best == bayes_optimal(p, df[LABEL].to_numpy())
    assert 0.75 < best["auc"] < 0.9 and abs(best["auc_realized"] - best["auc"]) < 0.01
    assert abs(best["logloss_realized"] - best["logloss"]) < 0.01
    # daypart is the quarter of the day of the timestamp
    quarter = (df[TIMESTAMP] // 3600 % 24 // 6).to_numpy()
    assert (np.array(["night", "morning", "afternoon", "evening"])[quarter] == df.daypart).all()


def test_synthetic_ctr_is_deterministic_per_seed():
    from recframe.testing import check_dataset

    check_dataset("synthetic_ctr", cfg(name="synthetic_ctr", **SMALL))
    a, b = generate(SyntheticCTRParams(**SMALL)), generate(SyntheticCTRParams(**SMALL))
    for key in ("interactions", "users", "items"):
        pd.testing.assert_frame_equal(getattr(a, key), getattr(b, key))
    assert np.array_equal(a.meta["true_probability"], b.meta["true_probability"])
    assert a.meta["fingerprint"] == b.meta["fingerprint"]
    c = generate(SyntheticCTRParams(**SMALL, seed=1))
    assert not c.interactions.equals(a.interactions)
    assert c.meta["fingerprint"] != a.meta["fingerprint"]


def test_true_probability_follows_rows_through_subsets():
    ds = generate(SyntheticCTRParams(**SMALL))
    p = ds.meta["true_probability"]
    part = ds.interactions.sample(frac=0.3, random_state=0)  # keeps the index labels
    got = bayes_optimal(p[part.index], part[LABEL])
    assert got["auc_realized"] == auc(p[part.index], part[LABEL].to_numpy())
    assert got["logloss"] == pytest.approx(binary_entropy(p[part.index]).mean())
    # the label rate follows p: a calibration check of the stored probabilities
    y = ds.interactions[LABEL].to_numpy()
    for lo, hi in ((0, 0.1), (0.1, 0.3), (0.3, 1)):
        sel = (p >= lo) & (p < hi)
        se = np.sqrt(np.sum(p[sel] * (1 - p[sel]))) / sel.sum()
        assert abs(y[sel].mean() - p[sel].mean()) < 4 * se


def test_planted_terms_show_in_the_bayes_auc():
    full = generate(SyntheticCTRParams(**SMALL, sequence_effect=0.0)).meta["bayes_optimal"]
    flat = generate(SyntheticCTRParams(**SMALL, sequence_effect=0.0,
                                       interactions="none")).meta["bayes_optimal"]
    assert full["auc"] > flat["auc"] + 0.03 and flat["auc"] > 0.6


def test_sequence_effect_uses_the_earlier_clicks_only():
    """true logit(effect e) - true logit(effect 0) == e x the share of the user's last
    `seq_window` clicks (earlier rows, label 1) whose item has the row item's category."""
    params = dict(SMALL, seq_window=3)
    ds = generate(SyntheticCTRParams(**params, sequence_effect=1.5))
    base = generate(SyntheticCTRParams(**params, sequence_effect=0.0))
    diff = (ds.meta["true_logit"] - base.meta["true_logit"]) / 1.5
    df = ds.interactions.assign(cat=ds.items.category.loc[ds.interactions[ITEM]].to_numpy())
    share = np.zeros(len(df))
    for _, rows in df.groupby(USER):  # a plain re-implementation, row by row
        clicked: list[str] = []
        for idx, cat, label in zip(rows.index, rows.cat, rows[LABEL], strict=True):
            last = clicked[-3:]
            share[idx] = sum(c == cat for c in last) / 3
            if label:
                clicked.append(cat)
    assert np.allclose(diff, share, atol=1e-12) and share.max() == 1.0


def test_population_auc_is_exact_by_brute_force_and_monte_carlo():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.02, 0.9, 37), [0.3] * 8, [0.7] * 5])  # with ties
    n = len(p)
    # brute force over ordered pairs i != j
    w = p[:, None] * (1 - p[None, :])
    right = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    off = ~np.eye(n, dtype=bool)
    exact = float((w * right)[off].sum() / w[off].sum())
    assert population_auc(p) == pytest.approx(exact, abs=1e-12)
    assert bayes_optimal(p)["auc"] == pytest.approx(exact, abs=1e-12)
    # Monte Carlo: draw a clicked row ~ p and a non-clicked row ~ 1 - p (distinct rows)
    m = 400_000
    i = rng.choice(n, size=m, p=p / p.sum())
    j = rng.choice(n, size=m, p=(1 - p) / (1 - p).sum())
    keep = i != j
    mc = right[i[keep], j[keep]]
    assert abs(mc.mean() - exact) < 4 * mc.std() / np.sqrt(keep.sum())
    # and by simulating whole label vectors: the mean realised AUC approaches it
    y = rng.random((4000, n)) < p
    realised = np.array([auc(p, row) for row in y[y.any(1) & ~y.all(1)]])
    assert abs(realised.mean() - exact) < 0.01
    # expected LogLoss = mean binary entropy, against simulated labels
    q = np.clip(p, 1e-15, 1 - 1e-15)
    losses = -(y * np.log(q) + (1 - y) * np.log1p(-q)).mean(axis=1)
    se = losses.std() / np.sqrt(len(losses))
    assert abs(losses.mean() - bayes_optimal(p)["logloss"]) < 4 * se


def test_realised_auc_matches_pair_counting():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.random(60) < 0.4
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert auc(s, y) == pytest.approx(np.mean(pairs), abs=1e-12)


@pytest.mark.parametrize("values, match", [
    ({"interactions": "triple"}, "interactions must be pairwise or none"),
    ({"n_rows": 10, "n_users": 20}, "n_rows must be >= n_users"),
    ({"click_rate": 1.5}, "click_rate must be in"),
    ({"seq_window": 0}, "seq_window must be >= 1"),
    ({"n_user": 10}, "Did you mean 'n_users'"),
    ({"rank": 2.5}, "dataset.rank"),
])
def test_synthetic_ctr_bad_config(values, match):
    with pytest.raises(ConfigError, match=match):
        plugin.load_synthetic_ctr(cfg(**{"name": "synthetic_ctr", **SMALL, **values}))


@needs_samples
@pytest.mark.parametrize("name", ["criteo", "avazu", "ml-sample", "synthetic_ctr"])
def test_declarations_parse_in_the_core(name, monkeypatch):
    from recframe.data.field_encoding import declared_fields

    monkeypatch.setenv("RECFRAME_DATA_DIR", str(DATA))
    ds = {"criteo": lambda: preset("criteo"), "avazu": lambda: preset("avazu"),
          "ml-sample": lambda: plugin.load_ctr_log(cfg(**ML_SAMPLE)),
          "synthetic_ctr": lambda: generate(SyntheticCTRParams(**SMALL))}[name]()
    decls = declared_fields(ds)
    own = [f["name"] for f in ds.meta["fields"]]
    ids = [USER, ITEM] if ds.meta.get("id_fields", True) else []
    assert [d.name for d in decls] == [*ids, *own]  # nothing left to infer
    for d, f in zip(decls[len(ids):], ds.meta["fields"], strict=True):
        assert (d.kind, d.owner) == (f["kind"], f["owner"])


def test_validate_fields_names_the_field_and_the_fix():
    frame = pd.DataFrame({USER: [1], ITEM: [2], LABEL: [1], "c": ["a"]})
    users = pd.DataFrame({"age": [30]}, index=pd.Index([1], name=USER))

    def check(*fields, error=ConfigError, match=""):
        with pytest.raises(error, match=match):
            ctr_fields.validate_fields(list(fields), interactions=frame, users=users, items=None)

    check({"name": "c", "kind": "categorical", "normalize": "log"},
          match="option 'normalize' does not apply to a categorical field")
    check({"name": "c", "kind": "categorical", "owner": "user"}, error=DataError,
          match="owner 'user' but the users frame has no column 'c'")
    check({"name": "ag", "kind": "numeric"}, error=DataError, match="Did you mean 'age'")
    check({"name": "c", "kind": "categorical", "owner": "usr"}, match="Did you mean 'user'")
    check({"name": "c", "kind": "categorical"}, {"name": "c", "kind": "text"}, match="twice")
    check({"name": "h", "kind": "sequence", "shares": "c"}, match="`shares` must name")
    check({"name": "age", "kind": "numeric", "buckets": -1}, match="buckets")
    check({"name": "label", "kind": "categorical"}, match="reserved")
    out = ctr_fields.validate_fields(
        [{"name": "c", "kind": "categorical"}, {"name": "a", "kind": "numeric", "column": "age"},
         {"name": "h", "kind": "sequence"}], interactions=frame, users=users, items=None)
    assert [(f["owner"], f.get("shares")) for f in out] == [
        ("context", None), ("user", None), ("context", ITEM)]
