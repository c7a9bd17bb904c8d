"""Vectorized negative sampling and batch datasets."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recframe.train.batches import EvalUsers, PairBatches, csr_rows, left_padded
from recframe.train.sampling import NegativeSampler


def _random_csr(n_users=50, n_items=40, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, random_state=rng, format="csr")
    m.data[:] = 1.0
    return m


def test_negatives_are_never_positives():
    m = _random_csr()
    sampler = NegativeSampler(m)
    users = np.repeat(np.arange(50), 20)
    neg = sampler.sample(users, 3, np.random.default_rng(1))
    assert neg.shape == (1000, 3)
    dense = m.toarray().astype(bool)
    assert not dense[users[:, None].repeat(3, 1), neg].any()


def test_negatives_cover_unseen_items_uniformly():
    m = _random_csr(n_users=1, n_items=10, density=0.5, seed=3)
    sampler = NegativeSampler(m)
    neg = sampler.sample(np.zeros(20000, dtype=np.int64), 1, np.random.default_rng(0))
    counts = np.bincount(neg.ravel(), minlength=10)
    unseen = ~m.toarray()[0].astype(bool)
    assert (counts[~unseen] == 0).all()
    share = counts[unseen] / counts.sum()
    assert np.allclose(share, 1 / unseen.sum(), atol=0.02)


def test_pair_batches_cover_each_positive_once_per_epoch_and_reshuffle():
    m = _random_csr()
    ds = PairBatches(m, batch_size=64, num_negatives=2, seed=0)
    pairs = np.concatenate([
        np.stack([ds[b]["users"].numpy(), ds[b]["pos"].numpy()], 1) for b in range(len(ds))
    ])
    coo = m.tocoo()
    assert sorted(map(tuple, pairs)) == sorted(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    first = ds[0]["users"].clone()
    ds.set_epoch(1)
    assert not np.array_equal(first.numpy(), ds[0]["users"].numpy())
    ds.set_epoch(0)
    assert np.array_equal(first.numpy(), ds[0]["users"].numpy())


def test_eval_batches_hold_only_users_with_truth_and_local_rows():
    truth = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32))
    ds = EvalUsers(truth, seen)
    assert len(ds) == 2
    b = ds.__getitems__([1])
    assert b["users"].tolist() == [2]
    assert b["truth_rows"].tolist() == [0, 0] and b["truth_cols"].tolist() == [0, 2]
    assert b["seen_rows"].tolist() == [0] and b["seen_cols"].tolist() == [1]


def test_left_padded_keeps_last_items_in_order():
    indptr = np.array([0, 3, 3, 8])
    items = np.array([1, 2, 3, 10, 11, 12, 13, 14])
    out = left_padded((indptr, items), np.array([0, 1, 2]), 4)
    assert out.tolist() == [[-1, 1, 2, 3], [-1, -1, -1, -1], [11, 12, 13, 14]]


def test_encoded_feature_frames_align_with_encoded_ids():
    import pandas as pd

    from recframe.data import Dataset, Split, encode

    inter = pd.DataFrame({"user_id": [7, 7, 9, 9], "item_id": [30, 10, 20, 30]})
    items = pd.DataFrame({"title": ["ten", "twenty", "thirty"], "genre_x": [1, 0, 1],
                          "kind": ["a", "b", "a"]}, index=pd.Index([10, 20, 30], name="item_id"))
    ds = Dataset(inter, items=items)
    data = encode(Split(ds, ds.with_interactions(inter.iloc[:0]),
                        ds.with_interactions(inter.iloc[:0])))
    for code, raw in enumerate(data.item_ids):
        assert data.item_features.loc[code, "title"] == items.loc[raw, "title"]
        assert data.item_features.loc[code, "genre_x"] == items.loc[raw, "genre_x"]
    assert data.item_feature_matrix()[:, 0].tolist() == [1.0, 0.0, 1.0]


def test_bitmap_and_sorted_key_lookups_agree():
    rng = np.random.default_rng(3)
    dense = rng.random((57, 131)) < 0.2
    dense[-1, -1] = True  # the largest key
    positives = sp.csr_matrix(dense)
    bitmap = NegativeSampler(positives)
    sorted_keys = NegativeSampler(positives, bitmap_max_bytes=0)
    assert bitmap._bitmap is not None and sorted_keys._bitmap is None
    users = rng.integers(0, 57, size=(400, 3))
    items = rng.integers(0, 131, size=(400, 3))
    expected = dense[users, items]
    assert np.array_equal(bitmap.is_positive(users, items), expected)
    assert np.array_equal(sorted_keys.is_positive(users, items), expected)
    seed = np.random.default_rng(0), np.random.default_rng(0)
    users_1d = rng.integers(0, 57, size=200)
    assert np.array_equal(bitmap.sample(users_1d, 4, seed[0]),
                          sorted_keys.sample(users_1d, 4, seed[1]))


def test_csr_rows_match_scipy_row_indexing_for_runs_and_arbitrary_users():
    m = sp.random(50, 30, density=0.2, format="csr", random_state=3, dtype=np.float32)
    m[7] = 0  # an empty row inside a run
    m.eliminate_zeros()
    for users in (np.arange(5, 20), np.array([3]), np.array([4, 5, 9, 2, 2]),
                  np.arange(50), np.array([], dtype=np.int64), np.array([10, 11, 13])):
        rows, cols = csr_rows(m, users)
        expected = m[users].tocoo() if len(users) else sp.coo_matrix((0, 30))
        order = np.lexsort((expected.col, expected.row))
        got = np.lexsort((cols, rows))
        np.testing.assert_array_equal(rows[got], expected.row[order])
        np.testing.assert_array_equal(cols[got], expected.col[order])
