"""Train a model outside a run: for meta-models (ensembles) and notebooks.

No validation, no checkpoints, no Lightning trainer: a plain loop over the
same batch datasets a run uses, so components of a meta-model can be trained
from inside the meta-model's own ``fit``.
"""

from __future__ import annotations

from typing import Any

import torch

from recframe.data.encode import RecData
from recframe.models.base import RecModel, TrainFormat, ensure_train_format, sequence_rows
from recframe.train.datamodule import RecDataModule


def fit_model(
    model: RecModel,
    data: RecData,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 1024,
    seed: int = 0,
) -> RecModel:
    """Fit ``model`` on ``data.train``: closed form once, or ``epochs`` of Adam steps.

    Batches go to the device of the model's parameters (move the model to a GPU
    first to train there).
    """
    fmt = ensure_train_format(model, type(model).__name__)
    model.prepare(data)
    if fmt is TrainFormat.FIT:
        model.fit(data)
        return model
    datamodule = RecDataModule(
        data, model.train_format, batch_size=batch_size,
        num_negatives=int(getattr(model, "num_negatives", 1)), seed=seed,
        max_seq_len=int(getattr(model, "max_seq_len", 0)),
        sequence_rows=sequence_rows(model),
    )
    dataset: Any = datamodule.make_train_set()
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    model.train()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for b in range(len(dataset)):
            optimizer.zero_grad(set_to_none=True)
            batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                     for k, v in dataset[b].items()}
            loss = model.loss(batch)
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def build_model(name: str, info: Any, cfg: Any) -> RecModel:
    """Build a registered model by name (for meta-models that combine others)."""
    from recframe.plugin.manager import default_manager

    return default_manager().models.get(name, key="model.components[].name").build(info, cfg)
