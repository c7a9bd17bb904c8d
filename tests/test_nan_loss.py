"""A NaN/Inf loss stops the run with a message naming the step, keeps the last good
checkpoint and marks the run failed."""

from __future__ import annotations

import json
import types

import pytest
import torch

from recframe.api import ModelSpec, hookimpl
from recframe.plugin import PluginManager
from recframe.runner import run_experiment
from recframe.train.task import NonFiniteLossError
from recframe_cf.bpr import BPRMF


class DivergingBPR(BPRMF):
    """BPR whose loss turns NaN after a fixed number of steps (a stand-in for divergence)."""

    nan_after = 40  # steps: the synthetic data has ~18 steps per epoch at batch size 512

    def loss(self, batch):
        self.steps = getattr(self, "steps", 0) + 1
        loss = super().loss(batch)
        return loss * torch.nan if self.steps > self.nan_after else loss


@pytest.fixture
def pm():
    @hookimpl
    def recframe_register_models(registry):
        registry.add(ModelSpec(name="diverging", build=lambda info, cfg: DivergingBPR(
            info.n_users, info.n_items, 16)))

    plugin = types.SimpleNamespace(recframe_register_models=recframe_register_models)
    plugin.__name__ = "diverging_plugin"
    return PluginManager([plugin])


def test_nan_loss_fails_the_run_and_keeps_last_good_checkpoint(compose, tmp_path, pm):
    cfg = compose("model=bpr", "model.name=diverging", "model.batch_size=512",
                  "trainer.max_epochs=10")
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch (\d+), step (\d+)") as e:
        run_experiment(cfg, tmp_path, pm=pm)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["status"] == "failed"
    assert record["error"]["type"] == "NonFiniteLossError"
    assert "step" in record["error"]["message"]
    epoch = int(e.value.args[0].split("epoch ")[1].split(",")[0])
    assert epoch >= 1  # at least one good epoch was checkpointed
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == epoch - 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
