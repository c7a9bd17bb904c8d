"""Typed fields: declarations, train-only fitting, encodings, leak-free sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recframe.data import Dataset, Split, encode
from recframe.data.field_encoding import declared_fields, history_before
from recframe.errors import ConfigError, DataError

FIELDS = [
    {"name": "genres", "kind": "multi_categorical", "sep": "|"},
    {"name": "hist", "kind": "sequence", "max_len": 4},
    {"name": "hour", "kind": "categorical", "min_count": 2},
    {"name": "price", "kind": "numeric"},
    {"name": "age", "kind": "numeric", "buckets": 4},
]


def _log(seed: int, n: int = 300, n_users: int = 15, n_items: int = 25) -> tuple:
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({
        "user_id": rng.integers(0, n_users, n), "item_id": rng.integers(0, n_items, n),
        "label": rng.integers(0, 2, n), "timestamp": rng.integers(0, 50, n),
        "hour": rng.integers(0, 24, n)})
    genres = np.array(["a|b", "c", "", "b|c|d", "e"], dtype=object)
    items = pd.DataFrame({"genres": genres[rng.integers(0, 5, n_items)],
                          "price": rng.normal(10, 3, n_items)},
                         index=pd.Index(range(n_items), name="item_id"))
    users = pd.DataFrame({"age": rng.integers(15, 70, n_users)},
                         index=pd.Index(range(n_users), name="user_id"))
    return rows, items, users


def _split(rows, items, users, cut=(200, 250), fields=FIELDS) -> Split:
    def ds(frame):
        return Dataset(frame, items, users, name="toy", meta={"fields": fields})
    return Split(ds(rows.iloc[: cut[0]]), ds(rows.iloc[cut[0]: cut[1]]), ds(rows.iloc[cut[1]:]))


def test_encodings_follow_the_documented_layout():
    data = encode(_split(*_log(0)))
    specs = {f.name: f for f in data.info.fields}
    assert [f.name for f in data.info.fields][:2] == ["user_id", "item_id"]
    assert specs["genres"].kind == "multi_categorical" and specs["genres"].max_len == 3
    assert specs["age"].kind == "categorical"  # bucketized numeric
    assert specs["hist"].shares == "item_id"
    assert specs["hist"].vocab_size == specs["item_id"].vocab_size
    test = data.labeled["test"]
    assert test.fields["genres"].shape == (len(test), 3)
    assert test.fields["hist"].shape == (len(test), 4)
    assert test.fields["price"].dtype == np.float32
    # right-padded multi-valued codes: no value after a padding zero
    g = data.labeled["train"].fields["genres"]
    assert not ((g[:, :-1] == 0) & (g[:, 1:] != 0)).any()
    # train statistics: standardized prices have mean 0 over train rows
    assert abs(float(data.labeled["train"].fields["price"].mean())) < 1e-5
    # the empty genre string is missing (all padding), not a value
    rows, items, _ = _log(0)
    empty = items["genres"].reindex(rows["item_id"].iloc[:200]).to_numpy() == ""
    assert (g[empty] == 0).all()


def test_unseen_and_rare_values_map_to_oov():
    rows, items, users = _log(1)
    rows.loc[rows.index[250:], "hour"] = 99  # a value only test rows have
    data = encode(_split(rows, items, users))
    assert (data.labeled["test"].fields["hour"] == 1).all()
    counts = rows["hour"].iloc[:200].value_counts()
    rare = set(counts[counts < 2].index)
    train_hours = rows["hour"].iloc[:200].to_numpy()
    codes = data.labeled["train"].fields["hour"]
    assert (codes[np.isin(train_hours, list(rare))] == 1).all()
    assert (codes[~np.isin(train_hours, list(rare))] >= 2).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-100, 100))
def test_no_statistic_sees_valid_or_test_rows(seed, shift):
    """Changing every valid/test value leaves the train encoding and all fitted
    vocabularies and statistics unchanged."""
    rows, items, users = _log(seed)
    base = encode(_split(rows, items, users))
    changed = rows.copy()
    changed.loc[changed.index[200:], "hour"] = (changed["hour"].iloc[200:] + 7) * 3
    changed.loc[changed.index[200:], "label"] = 1 - changed["label"].iloc[200:]
    changed.loc[changed.index[200:], "item_id"] = changed["item_id"].iloc[200:] + 1000
    other = encode(_split(changed, items, users))
    for name, f in base.field_encoder.fitted.items():
        g = other.field_encoder.fitted[name]
        assert (f.vocab is None and g.vocab is None) or f.vocab.equals(g.vocab), name
        assert f.stats == g.stats and f.max_len == g.max_len, name
        assert (f.edges is None and g.edges is None) or np.array_equal(f.edges, g.edges)
    for name, values in base.labeled["train"].fields.items():
        np.testing.assert_array_equal(values, other.labeled["train"].fields[name], name)


def _brute_history(users, times, codes, positive, target, max_len):
    out = []
    for r in np.flatnonzero(target):
        earlier = [i for i in range(len(users)) if users[i] == users[r] and times[i] < times[r]
                   and positive[i]]
        earlier.sort(key=lambda i: (times[i], i))
        seq = [codes[i] for i in earlier][-max_len:]
        out.append([0] * (max_len - len(seq)) + seq)
    return np.array(out, dtype=np.int64).reshape(-1, max_len)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), max_len=st.integers(1, 6))
def test_sequences_hold_only_strictly_earlier_positives(seed, max_len):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    users = rng.integers(0, 5, n)
    times = rng.integers(0, 10, n)  # many ties: a tie is not "before"
    codes = rng.integers(2, 30, n)
    positive = rng.random(n) < 0.6
    target = rng.random(n) < 0.7
    got = history_before(users, times, codes, positive, target, max_len)
    np.testing.assert_array_equal(got, _brute_history(users, times, codes, positive, target,
                                                      max_len))


def test_train_rows_never_see_held_out_clicks():
    rows, items, users = _log(3)
    rows["timestamp"] = np.arange(len(rows))[::-1]  # held-out rows are the earliest
    data = encode(_split(rows, items, users))
    # train rows' histories come from train rows alone: compare with a train-only encode
    alone = encode(_split(rows.iloc[:200], items, users, cut=(200, 200)))
    np.testing.assert_array_equal(data.labeled["train"].fields["hist"],
                                  alone.labeled["train"].fields["hist"])
    assert (data.labeled["test"].fields["hist"] > 0).any()


def test_ranking_tables_align_with_ids():
    rows, items, users = _log(4)
    data = encode(_split(rows, items, users))
    table = data.field_table("item")
    assert set(table) == {"item_id", "genres", "price"}
    assert len(table["genres"]) == data.info.n_items
    user_table = data.field_table("user")
    assert user_table["hist"].shape == (data.info.n_users, 4)
    # a user's table sequence is their last clicked train items, in time order
    train = rows.iloc[:200]
    u = data.user_ids[0]
    clicked = train[(train.user_id == u) & (train.label == 1)].sort_values("timestamp",
                                                                          kind="stable")
    want = data.field_encoder.encode_values("item_id", clicked["item_id"]).tolist()[-4:]
    assert user_table["hist"][0].tolist() == [0] * (4 - len(want)) + want


@pytest.mark.parametrize("fields, match", [
    ([{"name": "genres", "kind": "multi_categorial"}], "did you mean 'multi_categorical'"),
    ([{"name": "genres", "kind": "multi_categorical"}], "has no `sep`"),
    ([{"name": "colour", "kind": "categorical"}], "no column 'colour'"),
    ([{"name": "hist", "kind": "sequence", "shares": "nope"}], "'nope' is not a field"),
    ([{"name": "hour", "kind": "categorical", "min_count": 0}], "min_count"),
    ([{"name": "hour", "kind": "categorical", "sepp": "|"}], "unknown key"),
])
def test_bad_declarations_name_the_field_and_the_fix(fields, match):
    rows, items, users = _log(5)
    with pytest.raises(ConfigError, match=match):
        encode(_split(rows, items, users, fields=fields))


def test_sequence_needs_an_order():
    rows, items, users = _log(6)
    rows = rows.drop(columns="timestamp")
    ds = Dataset(rows, items, users, meta={"fields": [{"name": "h", "kind": "sequence"}]})
    with pytest.raises(DataError, match="needs the order of events"):
        declared_fields(ds)
    ordered = Dataset(rows, items, users,
                      meta={"ordered": True, "fields": [{"name": "h", "kind": "sequence"}]})
    assert any(d.kind == "sequence" for d in declared_fields(ordered))


def test_non_numeric_values_in_a_numeric_field_name_the_row():
    rows, items, users = _log(7)
    items = items.assign(price=items["price"].astype(object))
    items.loc[3, "price"] = "cheap"
    with pytest.raises(DataError, match="'cheap'"):
        encode(_split(rows, items, users))


def test_list_columns_with_missing_values_keep_each_value_on_its_row():
    """A list-valued column with None inside a list, empty lists and missing rows: every
    value stays on its own row (a misaligned flat index would shift codes across rows)."""
    from recframe.data.field_encoding import FieldEncoder

    items = pd.DataFrame({"tags": [["a", None, "b"], [], None, ["c"], ["a"]]},
                         index=pd.Index(range(5), name="item_id"))
    rows = pd.DataFrame({"user_id": [0] * 5, "item_id": range(5), "label": [1, 0, 1, 0, 1]})
    ds = Dataset(rows, items=items, meta={"fields": [{"name": "tags",
                                                       "kind": "multi_categorical"}]})
    enc = FieldEncoder(declared_fields(ds), "toy").fit(ds)
    codes = enc.encode_values("tags", items["tags"])
    a, b, c = (enc.fitted["tags"].vocab.get_loc(v) + 2 for v in ("a", "b", "c"))
    np.testing.assert_array_equal(codes, [[a, b], [0, 0], [0, 0], [c, 0], [a, 0]])
