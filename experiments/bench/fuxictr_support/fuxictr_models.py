"""LR, FM, DeepFM and DCNv2 on FuxiCTR 2.3.10's own ``BaseModel`` and layers.

Imported only inside ``.venv-fuxictr/`` (by ``run_fuxictr.py``). The FuxiCTR
package on PyPI ships the training loop (``fuxictr.pytorch.models.BaseModel``),
the data pipeline and the layers, but none of the models of its zoo: those live
in the repository's ``model_zoo/<Model>/src/<Model>.py`` (reczoo/FuxiCTR,
Apache-2.0), which ``pip`` does not install. The four classes below rebuild
those zoo models from the installed layers, with the zoo's structure, defaults
and call order (``compile`` -> ``reset_parameters`` -> ``model_to_device``), so
initialisation, loss and optimizer are FuxiCTR's own:

- ``LR`` (``model_zoo/LR/src/LR.py``): ``LogisticRegression`` (1-d embeddings of
  every feature, summed, plus a bias; sequence features sum-pooled), sigmoid.
- ``FM`` (``model_zoo/FM/src/FM.py``; Rendle, ICDM 2010): ``FeatureEmbedding`` +
  ``FactorizationMachine`` (the LR term plus the pairwise inner products
  ``0.5 * ((sum e)^2 - sum e^2)`` summed over dimensions).
- ``DeepFM`` (``model_zoo/DeepFM/DeepFM_torch/src/DeepFM.py``; Guo et al., IJCAI
  2017): the FM output plus ``MLP_Block`` over the concatenated field embeddings
  (output dim 1), summed before the sigmoid.
- ``DCNv2`` (``model_zoo/DCNv2/src/DCNv2.py``; Wang et al., WWW 2021):
  ``CrossNetV2`` (``x_{l+1} = x_l + x_0 * (W_l x_l + b_l)``) over the concatenated
  embeddings; ``model_structure`` ``parallel`` (the zoo's default: the cross
  output concatenated with an ``MLP_Block`` tower's last hidden layer),
  ``stacked``, ``stacked_parallel`` or ``crossnet_only``; then ``nn.Linear(., 1)``
  and the sigmoid. The low-rank mixture (``CrossNetMix``) option is left out.

Every model returns ``{"y_pred": sigmoid(logit)}`` as ``BaseModel.train_step`` and
``evaluate`` expect; the loss is FuxiCTR's ``binary_crossentropy`` on it.
"""

from __future__ import annotations

from typing import Any

import torch
from fuxictr.pytorch.layers import (
    CrossNetV2,
    FactorizationMachine,
    FeatureEmbedding,
    LogisticRegression,
    MLP_Block,
)
from fuxictr.pytorch.models import BaseModel
from torch import nn


def _finish(model: BaseModel, kwargs: dict[str, Any], learning_rate: float) -> None:
    """The zoo's closing calls: optimizer and loss, FuxiCTR's initialisation, device."""
    model.compile(kwargs["optimizer"], kwargs["loss"], learning_rate)
    model.reset_parameters()
    model.model_to_device()


class LR(BaseModel):
    """Logistic regression over every feature (FuxiCTR zoo ``LR``)."""

    def __init__(self, feature_map: Any, model_id: str = "LR", gpu: int = -1,
                 learning_rate: float = 1e-3, regularizer: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(feature_map, model_id=model_id, gpu=gpu,
                         embedding_regularizer=regularizer, net_regularizer=regularizer,
                         **kwargs)
        self.lr_layer = LogisticRegression(feature_map, use_bias=True)
        _finish(self, kwargs, learning_rate)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        X = self.get_inputs(inputs)
        return {"y_pred": self.output_activation(self.lr_layer(X))}


class FM(BaseModel):
    """Factorization machine (Rendle, ICDM 2010; FuxiCTR zoo ``FM``)."""

    def __init__(self, feature_map: Any, model_id: str = "FM", gpu: int = -1,
                 learning_rate: float = 1e-3, embedding_dim: int = 10,
                 regularizer: str | None = None, **kwargs: Any) -> None:
        super().__init__(feature_map, model_id=model_id, gpu=gpu,
                         embedding_regularizer=regularizer, net_regularizer=regularizer,
                         **kwargs)
        self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
        self.fm = FactorizationMachine(feature_map)
        _finish(self, kwargs, learning_rate)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        X = self.get_inputs(inputs)
        feature_emb = self.embedding_layer(X)
        return {"y_pred": self.output_activation(self.fm(X, feature_emb))}


class DeepFM(BaseModel):
    """FM plus an MLP over the field embeddings (Guo et al., IJCAI 2017; zoo ``DeepFM``)."""

    def __init__(self, feature_map: Any, model_id: str = "DeepFM", gpu: int = -1,
                 learning_rate: float = 1e-3, embedding_dim: int = 10,
                 hidden_units: list[int] | None = None, hidden_activations: str = "ReLU",
                 net_dropout: float = 0.0, batch_norm: bool = False,
                 embedding_regularizer: str | None = None, net_regularizer: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(feature_map, model_id=model_id, gpu=gpu,
                         embedding_regularizer=embedding_regularizer,
                         net_regularizer=net_regularizer, **kwargs)
        hidden_units = [64, 64, 64] if hidden_units is None else list(hidden_units)
        self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
        self.fm = FactorizationMachine(feature_map)
        self.mlp = MLP_Block(input_dim=feature_map.sum_emb_out_dim(), output_dim=1,
                             hidden_units=hidden_units, hidden_activations=hidden_activations,
                             output_activation=None, dropout_rates=net_dropout,
                             batch_norm=batch_norm)
        _finish(self, kwargs, learning_rate)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        X = self.get_inputs(inputs)
        feature_emb = self.embedding_layer(X)
        y_pred = self.fm(X, feature_emb)
        y_pred += self.mlp(feature_emb.flatten(start_dim=1))
        return {"y_pred": self.output_activation(y_pred)}


class DCNv2(BaseModel):
    """Deep & Cross Network v2 (Wang et al., WWW 2021; FuxiCTR zoo ``DCNv2``)."""

    STRUCTURES = ("crossnet_only", "stacked", "parallel", "stacked_parallel")

    def __init__(self, feature_map: Any, model_id: str = "DCNv2", gpu: int = -1,
                 model_structure: str = "parallel", learning_rate: float = 1e-3,
                 embedding_dim: int = 10, stacked_dnn_hidden_units: list[int] | None = None,
                 parallel_dnn_hidden_units: list[int] | None = None,
                 dnn_activations: str = "ReLU", num_cross_layers: int = 3,
                 net_dropout: float = 0.0, batch_norm: bool = False,
                 embedding_regularizer: str | None = None, net_regularizer: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(feature_map, model_id=model_id, gpu=gpu,
                         embedding_regularizer=embedding_regularizer,
                         net_regularizer=net_regularizer, **kwargs)
        if model_structure not in self.STRUCTURES:
            raise ValueError(f"model_structure={model_structure!r}; one of {self.STRUCTURES}")
        stacked = list(stacked_dnn_hidden_units or [])
        parallel = list(parallel_dnn_hidden_units or [])
        self.model_structure = model_structure
        self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
        input_dim = feature_map.sum_emb_out_dim()
        self.crossnet = CrossNetV2(input_dim, num_cross_layers)

        def tower(units: list[int]) -> MLP_Block:
            return MLP_Block(input_dim=input_dim, output_dim=None, hidden_units=units,
                             hidden_activations=dnn_activations, output_activation=None,
                             dropout_rates=net_dropout, batch_norm=batch_norm)

        final_dim = input_dim  # crossnet_only
        if model_structure in ("stacked", "stacked_parallel"):
            self.stacked_dnn = tower(stacked)
            final_dim = stacked[-1]
        if model_structure in ("parallel", "stacked_parallel"):
            self.parallel_dnn = tower(parallel)
            final_dim = input_dim + parallel[-1]
        if model_structure == "stacked_parallel":
            final_dim = stacked[-1] + parallel[-1]
        self.fc = nn.Linear(final_dim, 1)
        _finish(self, kwargs, learning_rate)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        X = self.get_inputs(inputs)
        feature_emb = self.embedding_layer(X, flatten_emb=True)
        cross_out = self.crossnet(feature_emb)
        if self.model_structure == "crossnet_only":
            final_out = cross_out
        elif self.model_structure == "stacked":
            final_out = self.stacked_dnn(cross_out)
        elif self.model_structure == "parallel":
            final_out = torch.cat([cross_out, self.parallel_dnn(feature_emb)], dim=-1)
        else:
            final_out = torch.cat([self.stacked_dnn(cross_out), self.parallel_dnn(feature_emb)],
                                  dim=-1)
        return {"y_pred": self.output_activation(self.fc(final_out))}


MODELS: dict[str, type[BaseModel]] = {"lr": LR, "fm": FM, "deepfm": DeepFM, "dcnv2": DCNv2}
