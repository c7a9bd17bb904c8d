"""recframe.eval.topk: the pruned CPU top-k against a brute-force ranking."""

from __future__ import annotations

import math

import pytest
import torch

from recframe.eval import topk as topk_module
from recframe.eval.topk import group_size, prunes, topk_rows


def reference(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row ranked by value (NaN first), ties by lower column: Python's sort."""
    columns = []
    for row in scores.tolist():
        key = [(0 if math.isnan(v) else 1, 0.0 if math.isnan(v) else -v, j)
               for j, v in enumerate(row)]
        columns.append([j for _, _, j in sorted(key)[:k]])
    columns_t = torch.tensor(columns, dtype=torch.long)
    return scores.gather(1, columns_t), columns_t


def matrix(seed: int, n_rows: int, n_columns: int, kind: str,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_rows, n_columns, generator=g, dtype=torch.float64)
    if kind == "tied":  # few distinct values: ties across the cut and within the list
        scores = torch.round(scores * 2)
    elif kind == "masked":  # most of some rows at -inf (fewer than k finite)
        scores[torch.rand(n_rows, n_columns, generator=g, dtype=torch.float64) < 0.5] = -math.inf
        scores[0, 3:] = -math.inf
        scores[0, :3] = torch.tensor([1.0, 2.0, 3.0])  # column order is not value order
    elif kind == "popular":  # popularity-like: one shared integer vector
        scores = torch.randint(0, 30, (1, n_columns), generator=g).double().expand(
            n_rows, -1).contiguous()
    return scores.to(dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["distinct", "tied", "masked", "popular"])
@pytest.mark.parametrize("n_columns,k", [(50, 10), (1000, 10), (1003, 20), (4001, 7)])
def test_equals_brute_force_ranking(threads, kind, n_columns, k):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scores = matrix(n_columns + k, 23, n_columns, kind)
        values, columns = topk_rows(scores, k)
        want_values, want_columns = reference(scores, k)
        assert torch.equal(columns, want_columns)
        assert torch.equal(values, want_values)
    finally:
        torch.set_num_threads(before)


def test_pruned_path_is_taken_where_it_pays_and_matches_plain_path(monkeypatch):
    scores = matrix(0, 64, 3706, "tied")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert prunes(scores, 20)
        pruned = topk_rows(scores, 20)
        monkeypatch.setattr(topk_module, "prunes", lambda *_: False)
        plain = topk_rows(scores, 20)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(pruned[0], plain[0]) and torch.equal(pruned[1], plain[1])


def test_not_pruned_when_it_does_not_pay_or_cannot():
    assert not prunes(torch.zeros(4, 100), 10)  # too narrow for k
    assert not prunes(torch.zeros(4, 5000, dtype=torch.float16), 10)
    assert not prunes(torch.zeros(4, 5000, requires_grad=True), 10)
    assert not prunes(torch.zeros(0, 5000), 10)
    assert 4 <= group_size(3706, 20) <= 16


def test_float64_and_rows_wider_than_groups_tail():
    scores = matrix(3, 17, 2407, "distinct", torch.float64)  # 2407 is prime: a tail group
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert prunes(scores, 10)
        values, columns = topk_rows(scores, 10)
    finally:
        torch.set_num_threads(before)
    want_values, want_columns = reference(scores, 10)
    assert torch.equal(columns, want_columns) and values.dtype == torch.float64


@pytest.mark.parametrize("threads", [1, 2])
def test_nan_ranked_first_as_torch_topk_ranks_it(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scores = matrix(5, 8, 4000, "tied")
        scores[2, 1234] = math.nan
        scores[5, 7] = math.nan
        values, columns = topk_rows(scores, 10)
    finally:
        torch.set_num_threads(before)
    assert torch.isnan(values[2, 0]) and columns[2, 0] == 1234
    assert torch.isnan(values[5, 0]) and columns[5, 0] == 7
    plain = torch.topk(scores, 10, dim=1).values
    assert torch.equal(values[~torch.isnan(values[:, 0])], plain[~torch.isnan(plain[:, 0])])


@pytest.mark.parametrize("kind", ["tied", "masked", "distinct"])
def test_a_row_depends_on_that_row_alone(kind):
    scores = matrix(9, 40, 3000, kind)
    whole = topk_rows(scores, 20)
    for size in (7, 1):
        parts = [topk_rows(scores[i:i + size], 20) for i in range(0, 40, size)]
        assert torch.equal(whole[1], torch.cat([p[1] for p in parts])), size


@pytest.mark.parametrize("n_columns", [5, 4000])
def test_tie_across_the_cut_takes_the_lower_column_and_keeps_value_order(n_columns):
    row = torch.full((1, n_columns), -1.0)
    row[0, :5] = torch.tensor([2.0, 5.0, 4.0, 1.0, 2.0])  # 2.0 at columns 0 and 4
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        values, columns = topk_rows(row, 3)
    finally:
        torch.set_num_threads(before)
    assert columns.tolist() == [[1, 2, 0]]
    assert values.tolist() == [[5.0, 4.0, 2.0]]
