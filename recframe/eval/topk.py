"""Row-wise top-k of a score matrix, faster than ``torch.topk`` on CPU for small k.

``torch.topk`` on CPU copies every row into (value, index) pairs and partially
sorts them: a few nanoseconds per element, the largest single cost of a
full-ranking evaluation once the scores are computed. :func:`topk_rows` prunes
first. The columns are cut into strided groups (group ``g`` holds columns
``g, g + G, g + 2G, ...``); the largest ``k`` values of a row lie in the ``k``
groups with the largest maxima, since every value above the k-th largest group
maximum sits in a group whose maximum is above it. So one vectorised max over
the row, a selection of ``k`` groups among ``G`` (``numpy.argpartition``: no
order needed) and an exact ``torch.topk`` over the ``k`` groups' members give
the same top-k values as ``torch.topk`` over the whole row, whatever the
distribution of the scores, for a fixed cost.

Ties and NaN: the values (``NaN`` ranked above every number, as ``torch.topk``
ranks it; ``-inf`` below every number) are exactly those of ``torch.topk``.
``torch.topk`` leaves the order of equal values unspecified, so on CPU
:func:`topk_rows` fixes it: lower column first. A user's list (and so the
metrics, when a relevant item ties with an irrelevant one) is then the same
whatever the batch, the thread count or the path taken.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Below this many columns per kept value the pruning does not pay; nor, with
#: more than one thread, below :data:`MIN_COLUMNS_THREADED` columns (``torch.topk``
#: parallelises over rows, and the two selections' per-row costs then dominate).
#: Measured on 512-row batches, k=10..100, 1,682..50,000 items, 1 and 2 threads
#: (``experiments/bench/topk_select.py`` reports the speed-up at such shapes).
MIN_COLUMNS_PER_K = 24
MIN_COLUMNS_THREADED = 3000


def group_size(n_columns: int, k: int) -> int:
    """Columns per group: balances the group selection (``n_columns / size``
    maxima, cheap per element) against the exact top-k over the kept groups
    (``k * size`` values, dearer per element); the factor and bounds are the
    measured optimum over the shapes named at :data:`MIN_COLUMNS_PER_K`."""
    return min(16, max(4, round(0.45 * math.sqrt(n_columns / k))))


def prunes(scores: torch.Tensor, k: int) -> bool:
    """Whether :func:`topk_rows` takes the pruned path for ``scores`` and ``k``:
    a CPU float32/float64 matrix without autograd history, wide enough for ``k``
    (see :data:`MIN_COLUMNS_PER_K`)."""
    return (scores.device.type == "cpu" and scores.dim() == 2
            and scores.dtype in (torch.float32, torch.float64)
            and not scores.requires_grad and k >= 1
            and scores.shape[1] >= MIN_COLUMNS_PER_K * k and scores.shape[0] > 0
            and (torch.get_num_threads() == 1 or scores.shape[1] >= MIN_COLUMNS_THREADED))


def _largest_groups(group_max: torch.Tensor, k: int) -> torch.Tensor:
    """Columns of the ``k`` largest values of each row of ``group_max``, in no order
    (NaN kept first, as ``torch.topk`` ranks it). On one thread ``numpy.argpartition``
    (about half the cost of ``torch.topk``); on more, ``torch.topk``, which spreads
    the rows over the threads."""
    n_groups = group_max.shape[1]
    if torch.get_num_threads() > 1:
        return torch.topk(group_max, k, dim=1, sorted=False).indices
    kept = np.argpartition(group_max.numpy(), n_groups - k, axis=1)[:, n_groups - k:]
    return torch.from_numpy(kept)


def _pruned_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk``'s values over the members of each row's ``k`` best groups."""
    n_rows, n_columns = scores.shape
    size = group_size(n_columns, k)
    n_groups = n_columns // size
    body = n_groups * size
    group_max = scores[:, :body].reshape(n_rows, size, n_groups).amax(dim=1)
    kept_groups = _largest_groups(group_max, k)
    offsets = torch.arange(0, body, n_groups, dtype=torch.long)
    columns = (kept_groups.unsqueeze(-1) + offsets).reshape(n_rows, k * size)
    if body < n_columns:  # the columns past the last whole group are always candidates
        rest = torch.arange(body, n_columns, dtype=torch.long).expand(n_rows, -1)
        columns = torch.cat([columns, rest], dim=1)
    values, position = torch.topk(scores.gather(1, columns), k=k, dim=1, sorted=True)
    return values, columns.gather(1, position)


def break_ties_by_column(scores: torch.Tensor, values: torch.Tensor,
                         columns: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Make a top-k canonical: equal scores ranked by lower column first, both
    across the cut (which of the items tied with the k-th value get in) and
    within the list. ``values``/``columns`` hold each row's ``k + 1`` largest
    values (any tie order; ``k`` when the row has only ``k`` columns), as
    ``torch.topk`` gives them: a row has a tie across the cut exactly when its
    (k+1)-th value equals its k-th, and only those rows (rare, except for scores
    with few distinct values, e.g. popularity counts) are redone over the row."""
    redone = False
    if values.shape[1] > k:
        # a row with a NaN (ranked first) is left as it is: count_nan reads that NaN
        crowded = ((values[:, k] == values[:, k - 1]) & ~torch.isnan(values[:, 0])
                   ).nonzero().flatten()
        values, columns = values[:, :k], columns[:, :k]
        if crowded.numel():  # redone rows come in column order: sorted below
            values, columns = _redo_crowded(scores, values, columns, crowded)
            redone = True
    if redone or bool((values[:, 1:] == values[:, :-1]).any()):
        by_column = torch.sort(columns, dim=1).indices
        values, columns = values.gather(1, by_column), columns.gather(1, by_column)
        by_value = torch.sort(values, dim=1, descending=True, stable=True).indices
        values, columns = values.gather(1, by_value), columns.gather(1, by_value)
    return values, columns


def _redo_crowded(scores: torch.Tensor, values: torch.Tensor, columns: torch.Tensor,
                  crowded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the ``crowded`` rows: every value above the k-th, then the lowest
    columns among those equal to it, up to k (in column order; sorted after)."""
    k = values.shape[1]
    sub = scores.index_select(0, crowded)
    cut = values.index_select(0, crowded)[:, -1:]
    above = sub > cut
    tied = (sub == cut).nonzero()  # (row, column) pairs, by row then column
    room = k - above.sum(dim=1)
    starts = torch.cumsum(torch.bincount(tied[:, 0], minlength=len(crowded)), 0)
    starts = torch.cat([starts.new_zeros(1), starts[:-1]])
    rank_in_row = torch.arange(len(tied)) - starts[tied[:, 0]]
    keep = tied[rank_in_row < room[tied[:, 0]]]
    take = above
    take[keep[:, 0], keep[:, 1]] = True
    chosen = take.nonzero()[:, 1].view(-1, k)  # ascending columns, k per row
    columns = columns.index_copy(0, crowded, chosen)
    values = values.index_copy(0, crowded, sub.gather(1, chosen))
    return values, columns


def topk_rows(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest values of each row of ``scores`` (``[B, n]``), best first,
    and their columns. Equal values rank by lower column on CPU
    (:func:`break_ties_by_column`), so a row's list depends on that row alone: not
    on the batch, the thread count or the path taken. On CPU the pruned selection
    (module docstring) is used where :func:`prunes` says it pays; elsewhere, and on
    accelerators, ``torch.topk`` itself (whose tie order is unspecified)."""
    if scores.device.type != "cpu" or not scores.numel() or k < 1:
        values, columns = torch.topk(scores, k=k, dim=1, sorted=True)
        return values, columns
    wanted = min(k + 1, scores.shape[1])  # one more: shows a tie across the cut
    if prunes(scores, wanted):
        values, columns = _pruned_topk(scores, wanted)
    else:
        values, columns = torch.topk(scores, k=wanted, dim=1, sorted=True)
    return break_ties_by_column(scores, values, columns, k)
