"""Membership-inference audit: held-out users, and the attack's per-user statistics.

``privacy.audit_users = f`` removes a seeded share ``f`` of the users from every part
before encoding: the model never sees them (non-members). After testing, the same
number of training users (members, drawn with the seed) and the non-members are each
scored **the same way**, from their training history alone, by the model's fold-in
(:meth:`RecModel.score_new_users`: least squares for matrix factorization, the history
itself for sequence and item-item models). The attack statistic of a user is the mean
percentile rank of their own history items among all items' scores: a model that
memorised its training users ranks their items higher than a stranger's. A metric
plugin of ``kind="audit"`` (``mia_auc``) turns the two sets of statistics into a
number; AUC 0.5 means the attack cannot tell members from non-members.

This is the score-threshold attack of Yeom, Giacomelli, Fredrikson & Jha, "Privacy Risk
in Machine Learning" (CSF 2018), applied per user as in Zhang et al., "Membership
Inference Attacks Against Recommender Systems" (CCS 2021), who also infer user-level
membership from a user's items and the model's outputs. Scoring members through the
fold-in too (not their trained user vector) keeps the comparison fair: a user vector
that exists only for members would give the answer away without any memorisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recframe.data.types import ITEM, TIMESTAMP, USER, Split
from recframe.errors import ConfigError
from recframe.models.base import FoldInNotSupported


@dataclass(frozen=True)
class AuditInput:
    """What an audit metric gets: one attack statistic per member and per non-member
    (higher = more member-like), and a seed for its resampling."""

    members: np.ndarray
    non_members: np.ndarray
    seed: int = 0


@dataclass
class HeldOut:
    """The non-members' training-part interactions (raw ids), held out before encoding."""

    interactions: pd.DataFrame
    n_users: int


def hold_out_users(split: Split, fraction: float, seed: int) -> tuple[Split, HeldOut]:
    """Remove ``round(fraction * users)`` users (seeded) from every part of ``split``."""
    users = np.sort(pd.unique(split.train.interactions[USER]))
    n_out = int(round(fraction * len(users)))
    if n_out < 2 or len(users) - n_out < 2:
        raise ConfigError(
            f"privacy.audit_users={fraction}: holds out {n_out} of {len(users)} users; the "
            f"audit needs at least 2 held-out and 2 training users. Raise it, or set "
            f"privacy.audit_users=0 to run without the audit.")
    rng = np.random.default_rng([seed, 917])
    out = users[rng.choice(len(users), size=n_out, replace=False)]

    def keep(ds):  # type: ignore[no-untyped-def]
        frame = ds.interactions
        return ds.with_interactions(frame[~frame[USER].isin(out)].reset_index(drop=True))

    train = split.train.interactions
    held = train[train[USER].isin(out)].reset_index(drop=True)
    kept = Split(keep(split.train), keep(split.valid), keep(split.test), name=split.name,
                 cold_start=split.cold_start)
    return kept, HeldOut(held, n_out)


def _histories(frame: pd.DataFrame, item_ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, items) of each held-out user's known items, in time order if known."""
    frame = frame.assign(_item=item_ids.get_indexer(frame[ITEM]))
    frame = frame[frame["_item"] >= 0]
    order = [USER, TIMESTAMP] if TIMESTAMP in frame.columns else [USER]
    frame = frame.sort_values(order, kind="stable")
    codes, _ = pd.factorize(frame[USER], sort=True)
    counts = np.bincount(codes, minlength=int(codes.max()) + 1 if len(codes) else 0)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, frame["_item"].to_numpy(np.int64)


def _select(history: tuple[np.ndarray, np.ndarray], rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    indptr, items = history
    lengths = indptr[rows + 1] - indptr[rows]
    new_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = indptr[rows]
    pos = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - new_ptr[:-1],
                                                                      lengths)
    return new_ptr, items[pos]


@torch.no_grad()
def history_statistics(model: torch.nn.Module, history: tuple[np.ndarray, np.ndarray],
                       n_items: int, max_len: int, batch_size: int = 256) -> np.ndarray:
    """Per user: mean percentile (0 = lowest, 1 = highest score) of their history items
    among all items, scored by the model's fold-in from that history."""
    indptr, items = history
    n = len(indptr) - 1
    out = np.zeros(n)
    device = next((t.device for t in model.parameters()), torch.device("cpu"))
    for start in range(0, n, batch_size):  # batches of users, vectorised within
        end = min(n, start + batch_size)
        lengths = indptr[start + 1:end + 1] - indptr[start:end]
        rows = np.repeat(np.arange(end - start), lengths)
        cols = items[indptr[start]:indptr[end]]
        seen = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(end - start, n_items))
        seen.sum_duplicates()
        coo = seen.tocoo()
        context = {"users": torch.full((end - start,), -1, dtype=torch.long),
                   "seen_rows": torch.from_numpy(coo.row.astype(np.int64)),
                   "seen_cols": torch.from_numpy(coo.col.astype(np.int64))}
        if max_len:
            seq = np.full((end - start, max_len), -1, dtype=np.int64)
            for_len = np.minimum(lengths, max_len)
            ends = indptr[start + 1:end + 1]
            r = np.repeat(np.arange(end - start), for_len)
            offs = np.arange(for_len.sum()) - np.repeat(np.cumsum(for_len) - for_len, for_len)
            seq[r, np.repeat(max_len - for_len, for_len) + offs] = items[
                np.repeat(ends - for_len, for_len) + offs]
            context["seq"] = torch.from_numpy(seq)
        context = {k: v.to(device) for k, v in context.items()}
        scores = model.score_new_users(context).double().cpu()
        scores = torch.nan_to_num(scores, nan=-1e300, neginf=-1e300)
        ranks = scores.argsort(dim=1).argsort(dim=1).double() / max(n_items - 1, 1)
        hit = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(
            coo.col.astype(np.int64))
        sums = torch.zeros(end - start, dtype=torch.float64).index_add_(0, hit[0], ranks[hit])
        counts = torch.bincount(hit[0], minlength=end - start).clamp_min(1)
        out[start:end] = (sums / counts).numpy()
    return out


def audit_statistics(model: torch.nn.Module, data: object, held: HeldOut, seed: int
                     ) -> tuple[AuditInput | None, str | None]:
    """The attack statistics of as many members as non-members, or ``(None, reason)``
    when the model cannot score users from their history (no fold-in)."""
    model.eval()
    non = _histories(held.interactions, pd.Index(data.item_ids))  # type: ignore[attr-defined]
    member_hist = data.history(("train",))  # type: ignore[attr-defined]
    n_members = len(member_hist[0]) - 1
    n_non = len(non[0]) - 1
    rng = np.random.default_rng([seed, 918])
    chosen = np.sort(rng.choice(n_members, size=min(n_non, n_members), replace=False))
    chosen = chosen[np.diff(member_hist[0])[chosen] > 0]
    max_len = int(getattr(model, "max_seq_len", 0))
    n_items = data.info.n_items  # type: ignore[attr-defined]
    try:
        members = history_statistics(model, _select(member_hist, chosen), n_items, max_len)
        non_members = history_statistics(model, non, n_items, max_len)
    except FoldInNotSupported as exc:
        return None, str(exc)
    return AuditInput(members, non_members, seed), None
