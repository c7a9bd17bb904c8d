"""Mult-VAE: a variational autoencoder of user rows with a multinomial likelihood."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    DataInfo,
    RecModel,
    TrainFormat,
    check_known_keys,
    float_param,
    history_matmul,
    int_param,
)


class MultVAE(RecModel):
    """Mult-VAE^PR: a user's training row ``x_u`` is encoded to a Gaussian latent and
    decoded to a softmax over all items.

    Liang, Krishnan, Hoffman & Jebara, "Variational Autoencoders for Collaborative
    Filtering", WWW 2018. Encoder ``[n_items -> hidden -> 2 * latent]`` and decoder
    ``[latent -> hidden -> n_items]`` with tanh between layers; the input is the
    L2-normalized row with dropout; the loss is the negative multinomial
    log-likelihood ``-sum_i x_ui log softmax(f(z_u))_i`` plus ``beta`` times the KL
    divergence to the standard normal prior, with ``beta`` raised linearly from 0 by
    ``1 / total_anneal_steps`` per training step up to ``anneal_cap`` (the paper's
    partial regularization). Scores decode the mean ``mu`` of the latent (no
    sampling, no dropout) from the user's history, so a user unseen in training is
    scored from their history as is (``scores_from_history``).

    Trains on :attr:`TrainFormat.MATRIX` batches: users and the coordinates of their
    training items (docs/batch_layouts.md); the first layer is a sparse product on
    CPU (:func:`recframe.api.history_matmul`), the likelihood a gather at those
    coordinates, so no ``[B, n_items]`` input matrix is built.
    """

    train_format = TrainFormat.MATRIX
    scores_from_history = True

    def __init__(self, n_items: int, hidden_dim: int = 600, latent_dim: int = 200,
                 dropout: float = 0.5, anneal_cap: float = 0.2,
                 total_anneal_steps: int = 200000) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        # the first layer as a weight matrix [n_items, hidden] for the sparse product
        self.enc_in = nn.Parameter(torch.empty(n_items, hidden_dim))
        self.enc_in_bias = nn.Parameter(torch.empty(hidden_dim))
        self.enc_out = nn.Linear(hidden_dim, 2 * latent_dim)
        self.dec_hidden = nn.Linear(latent_dim, hidden_dim)
        self.dec_out = nn.Linear(hidden_dim, n_items)
        # the paper's initialization: Xavier-uniform weights, N(0, 0.001^2) biases
        nn.init.xavier_uniform_(self.enc_in)
        nn.init.normal_(self.enc_in_bias, std=0.001)
        for layer in (self.enc_out, self.dec_hidden, self.dec_out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)
        #: training steps taken (drives the KL annealing; saved with the checkpoint)
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))

    def _encode(self, batch: dict[str, torch.Tensor], size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``[size, latent]`` of the batch's rows, L2-normalized (and
        dropped out while training)."""
        rows = batch["seen_rows"]
        counts = torch.bincount(rows, minlength=size).clamp_min(1).to(self.enc_in.dtype)
        values = counts.rsqrt()[rows]
        if self.training and self.dropout > 0:
            keep = torch.rand(values.shape, device=values.device) >= self.dropout
            values = values * keep / (1.0 - self.dropout)
        hidden = torch.tanh(history_matmul(batch, size, self.enc_in, values) + self.enc_in_bias)
        mu, logvar = self.enc_out(hidden).chunk(2, dim=-1)
        return mu, logvar

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec_out(torch.tanh(self.dec_hidden(z)))

    def beta(self) -> float:
        """The KL weight of the next training step."""
        if self.total_anneal_steps <= 0:
            return self.anneal_cap
        return min(self.anneal_cap, float(self.anneal_step) / self.total_anneal_steps)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        size = len(batch["users"])
        mu, logvar = self._encode(batch, size)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        log_probs = torch.log_softmax(self._decode(z), dim=-1)
        nll = -log_probs[batch["seen_rows"], batch["seen_cols"]].sum() / size
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1).mean()
        beta = self.beta()
        if self.training:
            self.anneal_step += 1
        return nll + beta * kl

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        mu, _ = self._encode(context, len(users))
        return self._decode(mu)


def build_multvae(info: DataInfo, cfg: Any) -> MultVAE:
    check_known_keys(cfg, "model 'multvae'", (  # + the keys the core reads (a run strips them)
        "hidden_dim", "latent_dim", "dropout", "anneal_cap", "total_anneal_steps",
        "batch_size", "lr", "weight_decay", "training", "item_text"),
        "{name: multvae, hidden_dim: 600, ...}")
    return MultVAE(
        info.n_items,
        hidden_dim=int_param(cfg, "hidden_dim", 600),
        latent_dim=int_param(cfg, "latent_dim", 200),
        dropout=float_param(cfg, "dropout", 0.5, maximum=0.99),
        anneal_cap=float_param(cfg, "anneal_cap", 0.2),
        total_anneal_steps=int_param(cfg, "total_anneal_steps", 200000, minimum=0),
    )
