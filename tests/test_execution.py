"""``steps_per_execution``: K optimizer steps per batch of Lightning's loop, same updates."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from recframe.errors import ConfigError
from recframe.runner import build_experiment, run_experiment
from recframe.train.execution import AUTO_STEPS, StepChunks, resolve_steps_per_execution

SMALL = ("model.batch_size=256", "evaluation.batch_size=256")


def _trainer(**kwargs) -> pl.Trainer:
    settings = {"max_epochs": 2, "logger": False, "enable_progress_bar": False,
                "enable_checkpointing": False, "enable_model_summary": False,
                "use_distributed_sampler": False, "limit_val_batches": 0,
                "accelerator": "cpu", "devices": 1, **kwargs}
    return pl.Trainer(**settings)


def _fit(compose, steps, *overrides: str, **trainer_kwargs):
    exp = build_experiment(compose(*SMALL, *overrides))
    trainer = _trainer(**trainer_kwargs)
    k = resolve_steps_per_execution(steps, trainer, exp.task.is_closed_form)
    exp.task.use_steps_per_execution(k)
    trainer.fit(exp.task, datamodule=exp.datamodule)
    return exp, trainer, k


def _weights(exp) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in exp.model.state_dict().items()}


@pytest.mark.parametrize("model", ["bpr", "sasrec"])
def test_chunked_steps_give_the_same_weights_steps_and_loss(compose, model):
    """K = 1, 3 (a last chunk shorter than K) and auto take the very same updates,
    dropout draws included (SASRec)."""
    runs = {k: _fit(compose, k, f"model={model}", "model.batch_size=24")
            for k in (1, 3, "auto")}
    (ref, ref_trainer, _), others = runs[1], [runs[3], runs["auto"]]
    assert runs[3][2] == 3 and runs["auto"][2] == AUTO_STEPS
    assert len(ref.datamodule.train_set) > AUTO_STEPS  # several chunks per epoch
    for exp, trainer, k in others:
        assert trainer.global_step == ref_trainer.global_step > 0
        assert not exp.task.automatic_optimization
        for name, value in _weights(exp).items():
            assert torch.equal(value, _weights(ref)[name]), (k, name)
        assert exp.task.epoch_seconds and len(exp.task.epoch_seconds) == 2
    # the weights did move: the comparison is not between untouched initialisations
    fresh = build_experiment(compose(*SMALL, f"model={model}", "model.batch_size=24"))
    assert any(not torch.equal(v, _weights(ref)[n]) for n, v in _weights(fresh).items())


def test_max_steps_stops_inside_a_chunk(compose):
    _, trainer, k = _fit(compose, 8, "model=bpr", max_steps=5)
    assert k == 8 and trainer.global_step == 5


def test_auto_falls_back_to_one_step_where_single_batches_are_observed(compose):
    class PerBatch(pl.Callback):
        def on_train_batch_end(self, *args):
            pass

    assert resolve_steps_per_execution("auto", _trainer(), closed_form=False) == AUTO_STEPS
    assert resolve_steps_per_execution("auto", _trainer(), closed_form=True) == 1
    blocking = [{"gradient_clip_val": 1.0}, {"accumulate_grad_batches": 2},
                {"limit_train_batches": 3}, {"val_check_interval": 0.5},
                {"limit_train_batches": 1}, {"val_check_interval": 1},  # ints count batches
                {"callbacks": [PerBatch()]},
                {"callbacks": [pl.callbacks.ModelCheckpoint(every_n_train_steps=10)],
                 "enable_checkpointing": True}]
    for kwargs in blocking:
        assert resolve_steps_per_execution("auto", _trainer(**kwargs), False) == 1, kwargs
    # what the default run uses does not block: epoch-level checkpointing and stopping
    default = _trainer(callbacks=[pl.callbacks.ModelCheckpoint(monitor="val/ndcg@10"),
                                  pl.callbacks.EarlyStopping(monitor="val/ndcg@10")],
                       enable_checkpointing=True)
    assert resolve_steps_per_execution("auto", default, False) == AUTO_STEPS


def test_explicit_steps_with_a_blocker_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"steps_per_execution=4 .*gradient_clip_val=1\.0"):
        resolve_steps_per_execution(4, _trainer(gradient_clip_val=1.0), False)
    assert resolve_steps_per_execution(1, _trainer(gradient_clip_val=1.0), False) == 1


@pytest.mark.parametrize("value", [0, -2, "fast", 2.5, True])
def test_bad_values_name_the_key(value):
    with pytest.raises(ConfigError, match="steps_per_execution must be a positive integer"):
        resolve_steps_per_execution(value, _trainer(), False)


def test_step_chunks_cover_every_batch_once_in_order():
    chunks = StepChunks(list(range(10)), 4)
    assert len(chunks) == 3
    assert [chunks[c] for c in range(len(chunks))] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_run_records_its_steps_and_matches_one_step_per_batch(compose, tmp_path):
    """Through run_experiment (validation, early stopping, checkpoints): auto and 1
    report the same metrics, and results.json says which K ran."""
    results = {k: run_experiment(compose(*SMALL, "model=bpr", "trainer.max_epochs=3",
                                         f"steps_per_execution={k}"), tmp_path / str(k))
               for k in ("auto", 1)}
    assert results["auto"]["steps_per_execution"] == AUTO_STEPS
    assert results[1]["steps_per_execution"] == 1
    assert results["auto"]["metrics"] == results[1]["metrics"]
    assert results["auto"]["best_epoch"] == results[1]["best_epoch"]
