"""Constrained beam search over a prefix trie of valid semantic IDs, batched over users.

TIGER (Rajput et al., NeurIPS 2023) decodes the next item's semantic ID code by code
and, since not every code tuple is an item, restricts each step to codes that extend a
valid prefix. The trie is one dense table per level: ``children[d][node, code]`` is the
child node of ``node`` at level ``d + 1`` (the item index at the last level), ``-1``
where no item continues the prefix. A beam step is then a gather, a mask, one
``topk`` over ``beam x codes`` per user: no Python loop over users or beams.
The step function sees all beams of a user at once, so a decoder can read each user's
encoder memory once for all of them (``TIGER.decode_beams``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class PrefixTrie:
    """Valid semantic IDs as per-level child tables (see the module docstring)."""

    def __init__(self, codes: np.ndarray, widths: list[int]) -> None:
        """``codes`` ``[n_items, D]`` (rows of ``-1``: items left out), ``widths[d]``:
        the number of codes at level ``d``."""
        placed = np.flatnonzero((codes >= 0).all(1))
        rows = codes[placed]
        depth = codes.shape[1]
        self.widths = widths
        self.children: list[torch.Tensor] = []
        #: per level d < depth - 1: each placed item's node at level d + 1, and the count
        self.item_nodes: list[torch.Tensor] = []
        self.level_sizes: list[int] = []
        self.item_index = torch.from_numpy(placed)
        node = np.zeros(len(rows), dtype=np.int64)  # every item starts at the root
        n_nodes = 1
        for d in range(depth):
            table = np.full((n_nodes, widths[d]), -1, dtype=np.int64)
            if d == depth - 1:
                table[node, rows[:, d]] = placed
            else:
                key = node * widths[d] + rows[:, d]
                uniq, child = np.unique(key, return_inverse=True)
                table[uniq // widths[d], uniq % widths[d]] = np.arange(len(uniq))
                node, n_nodes = child.reshape(-1), len(uniq)
            self.children.append(torch.from_numpy(table))
            if d < depth - 1:
                self.item_nodes.append(torch.from_numpy(node.copy()))
                self.level_sizes.append(n_nodes)
        self.n_items = int(codes.shape[0])
        self.n_valid = len(placed)

    @property
    def depth(self) -> int:
        return len(self.children)

    def to(self, device: torch.device) -> PrefixTrie:
        self.children = [t.to(device) for t in self.children]
        self.item_nodes = [t.to(device) for t in self.item_nodes]
        self.item_index = self.item_index.to(device)
        return self


#: ``step(prefix_codes [B, R, d]) -> log-probabilities [B, R, widths[d]]``: the model's
#: distribution over level ``d``'s codes given the codes so far, for ``R`` prefixes of
#: each of the ``B`` users of the batch
StepFn = Callable[[torch.Tensor], torch.Tensor]


def alive_counts(trie: PrefixTrie, banned: torch.Tensor) -> list[torch.Tensor]:
    """Per level ``d < depth - 1``: ``[batch, nodes at level d + 1]``, how many items
    under each node are not banned for each user (a node without any is a dead end)."""
    allowed = (~banned[:, trie.item_index]).float()  # [B, placed items]
    return [torch.zeros(banned.shape[0], n, device=banned.device).index_add_(1, nodes, allowed)
            for nodes, n in zip(trie.item_nodes, trie.level_sizes, strict=True)]


def beam_search(step: StepFn, trie: PrefixTrie, batch: int, beam: int,
                banned: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam`` best valid semantic IDs per user by summed log-probability.

    Returns ``(items [batch, beam], scores [batch, beam])``, best first; slots the beam
    could not fill (fewer valid IDs than ``beam``) hold item ``-1`` and score ``-inf``.
    ``banned`` ``[batch, n_items]`` (bool) removes items (e.g. items the user has seen):
    prefixes all of whose items are banned are pruned at every level, so the beam spends
    no slot on a dead end.
    """
    device = trie.children[0].device
    alive = alive_counts(trie, banned) if banned is not None else None
    node = torch.zeros(batch, 1, dtype=torch.long, device=device)  # [B, W] trie nodes
    score = torch.zeros(batch, 1, device=device)
    prefix = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)  # [B, W, d]
    for d in range(trie.depth):
        live = torch.isfinite(score)
        logp = step(prefix)  # [B, W, V]
        child = trie.children[d][node.clamp(min=0)]  # [B, W, V]
        valid = (child >= 0) & live.unsqueeze(-1)
        if banned is not None:
            flat = child.clamp(min=0).view(batch, -1)
            if d == trie.depth - 1:
                valid &= ~banned.gather(1, flat).view_as(child)
            else:
                valid &= alive[d].gather(1, flat).view_as(child) > 0
        total = (score.unsqueeze(-1) + logp).masked_fill(~valid, -torch.inf)
        k = min(beam, total.shape[1] * total.shape[2])
        score, flat = total.view(batch, -1).topk(k, dim=1)
        parent, code = flat // total.shape[2], flat % total.shape[2]
        node = child.view(batch, -1).gather(1, flat)
        prefix = torch.cat([prefix.gather(1, parent.unsqueeze(-1).expand(-1, -1, d)),
                            code.unsqueeze(-1)], dim=2)
    items = torch.where(torch.isfinite(score), node, torch.full_like(node, -1))
    if items.shape[1] < beam:  # fewer candidates than the beam in total
        pad = beam - items.shape[1]
        items = torch.cat([items, items.new_full((batch, pad), -1)], 1)
        score = torch.cat([score, score.new_full((batch, pad), -torch.inf)], 1)
    return items, score


def brute_force_topk(step: StepFn, codes: np.ndarray, batch: int, k: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: score every valid ID of every user by summed log-probabilities and
    keep the top ``k`` (for tests; enumerates all items)."""
    placed = np.flatnonzero((codes >= 0).all(1))
    ids = torch.from_numpy(codes[placed])
    total = torch.zeros(batch, len(placed))
    for d in range(codes.shape[1]):
        logp = step(ids[:, :d].unsqueeze(0).expand(batch, -1, -1))  # every item a "beam"
        total += logp.gather(2, ids[:, d].view(1, -1, 1).expand(batch, -1, 1)).squeeze(2)
    score, idx = total.topk(min(k, len(placed)), dim=1)
    return torch.from_numpy(placed)[idx], score
