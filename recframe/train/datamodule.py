"""``RecDataModule``: feeds a model its training format and evaluation batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from recframe.data.encode import RecData
from recframe.eval.candidates import CandidateSampler
from recframe.models.base import TrainFormat
from recframe.train.batches import (
    EvalUsers,
    FitBatches,
    LabeledBatches,
    MatrixBatches,
    PairBatches,
    PointBatches,
    SequenceBatches,
)
from recframe.train.execution import StepChunks
from recframe.train.shard_batches import ShardPairBatches
from recframe.train.shard_eval import ShardEvalUsers


def _identity(batch: dict) -> dict:
    return batch


def sample_users(users: np.ndarray, n: int, seed: int, part: str) -> np.ndarray:
    """``n`` of ``users`` drawn with ``(seed, part)``, ascending (all when fewer): the
    same sample for every model and epoch of a seed, so runs stay comparable."""
    if n >= len(users):
        return users
    rng = np.random.default_rng([seed, {"valid": 1, "test": 2}.get(part, 0)])
    return np.sort(rng.choice(users, n, replace=False))


def _unrepeated(dataset: Dataset, world: int, rank: int) -> Sampler:
    """Each rank gets users rank, rank + world, ...: no padding, no repeats."""
    return UnrepeatedDistributedSampler(dataset, world, rank, shuffle=False)


class RecDataModule(pl.LightningDataModule):
    """Training batches in the model's format; valid/test batches of users.

    Under DDP (world size > 1) training batches are sharded with a seeded
    ``DistributedSampler`` and evaluation users with Lightning's
    ``UnrepeatedDistributedSampler``, which never pads with repeated users
    (the default sampler would, and bias the metrics). The trainer must be
    built with ``use_distributed_sampler=False`` so these samplers stay.
    """

    def __init__(
        self,
        data: RecData,
        train_format: TrainFormat,
        *,
        batch_size: int = 1024,
        eval_batch_size: int = 512,
        num_negatives: int = 1,
        seed: int = 0,
        num_workers: int = 0,
        max_seq_len: int = 0,
        sequence_rows: str = "recent",
        candidates: CandidateSampler | None = None,
        eval_sampler: Callable[[Dataset, int, int], Sampler] | None = None,
        protocol: str = "ranking",
        streaming: bool = False,
        eval_users: dict[str, int | None] | None = None,
    ) -> None:
        super().__init__()
        self.data = data
        self.train_format = TrainFormat(train_format)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_negatives = num_negatives
        self.seed = seed
        self.num_workers = num_workers
        self.max_seq_len = max_seq_len
        self.sequence_rows = sequence_rows
        self.candidates = candidates
        self.eval_sampler = eval_sampler or _unrepeated
        self.protocol = protocol
        #: pair/point batches streamed from the train shards (data.streaming, out of core)
        self.streaming = streaming
        #: part -> users evaluated (a seeded sample; None: all) (evaluation.valid_users)
        self.eval_users = dict(eval_users or {})
        self.world: tuple[int, int] | None = None  # (world size, rank) without a trainer
        self.train_set: Dataset | None = None

    def _world(self) -> tuple[int, int]:
        if self.world is not None:
            return self.world
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _on_cuda(self) -> bool:
        trainer = self.trainer
        try:
            return trainer is not None and trainer.strategy.root_device.type == "cuda"
        except (AttributeError, RuntimeError):
            return False

    def _steps_per_execution(self) -> int:
        """Optimizer steps the trained module takes per batch of Lightning's loop
        (``RecTask.use_steps_per_execution``; recframe.train.execution)."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        return int(getattr(module, "steps_per_execution", 1))

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        world, rank = self._world()
        workers = {"num_workers": self.num_workers,
                   "persistent_workers": self.num_workers > 0,
                   # page-locked host batches copy to the GPU asynchronously
                   "pin_memory": self._on_cuda()}
        if train and isinstance(dataset, ShardPairBatches):  # streamed: sharded by rank
            dataset.world, dataset.rank, dataset.steps = world, rank, \
                self._steps_per_execution()
            return DataLoader(dataset, batch_size=None, **workers)
        if train:  # items are whole batches (or lists of steps_per_execution of them)
            steps = self._steps_per_execution()
            if steps > 1:
                dataset = StepChunks(dataset, steps)
            sampler = (DistributedSampler(dataset, world, rank, shuffle=True, seed=self.seed)
                       if world > 1 else None)
            return DataLoader(dataset, batch_size=None, sampler=sampler, **workers)
        # evaluation: shard users across ranks without repeats, then batch them
        users = self.eval_sampler(dataset, world, rank) if world > 1 else SequentialSampler(dataset)
        return DataLoader(dataset, batch_sampler=BatchSampler(users, self.eval_batch_size, False),
                          collate_fn=_identity, **workers)

    def make_train_set(self) -> Dataset:
        fmt = self.train_format
        if fmt is TrainFormat.FIT:
            return FitBatches()
        shards = self.data.meta.get("shards") if self.streaming else None
        if shards and fmt in (TrainFormat.PAIRS, TrainFormat.POINTS):
            from recframe.data.ooc.shards import read_manifest

            return ShardPairBatches(Path(shards), read_manifest(Path(shards)), self.data.train,
                                    self.batch_size, self.num_negatives, self.seed,
                                    points=fmt is TrainFormat.POINTS)
        if fmt is TrainFormat.PAIRS:
            return PairBatches(self.data.train, self.batch_size, self.num_negatives, self.seed)
        if fmt is TrainFormat.LABELED:
            if "train" not in self.data.labeled:
                raise ValueError(
                    "train format 'labeled' needs labeled rows: a dataset with a 0/1 `label` "
                    "column (logged impressions)")
            return LabeledBatches(self.data.labeled["train"], self.batch_size, self.seed)
        if fmt is TrainFormat.POINTS:
            return PointBatches(self.data.train, self.batch_size, self.num_negatives, self.seed)
        if fmt is TrainFormat.SEQUENCES:
            if self.max_seq_len < 1:
                raise ValueError("sequence models must set max_seq_len >= 1")
            return SequenceBatches(self.data.history(("train",)), self.batch_size,
                                   self.max_seq_len, self.seed, self.sequence_rows)
        if fmt is TrainFormat.MATRIX:
            return MatrixBatches(self.data.train, self.batch_size, self.seed)
        raise NotImplementedError(f"train format {fmt.value!r} has no batches")  # unreachable

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.train_set = self.make_train_set()
        return self._loader(self.train_set, train=True)

    def set_epoch(self, epoch: int) -> None:
        if self.train_set is not None and hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)

    def eval_set(self, part: str) -> EvalUsers | ShardEvalUsers:
        users = self._eval_set(part)
        limit = self.eval_users.get(part)
        if limit is not None:
            users.users = sample_users(users.users, limit, self.seed, part)
        return users

    def _eval_set(self, part: str) -> EvalUsers | ShardEvalUsers:
        shards = self.data.meta.get("shards") if self.streaming else None
        if shards and not self.max_seq_len and self.candidates is None:
            # streamed: seen and held-out items read from the shards batch by batch
            from recframe.data.ooc.shards import read_manifest

            return ShardEvalUsers(Path(shards), read_manifest(Path(shards)), part,
                                  self.data.info.n_users, self.data.info.n_items)
        history = None
        if self.max_seq_len:
            parts = ("train",) if part == "valid" else ("train", "valid")
            history = self.data.history(parts)
        return EvalUsers(
            self.data.matrix(part), self.data.seen(part), history=history,
            max_len=self.max_seq_len, candidates=self.candidates,
        )

    def _eval_loader(self, part: str) -> DataLoader:
        if self.protocol != "ctr":
            return self._loader(self.eval_set(part), train=False)
        # labeled rows in logged order; under DDP rank r scores rows r, r + world, ...
        # (every rank gets rows whatever the batch size; metrics see the gathered rows)
        labeled = self.data.labeled[part]
        world, rank = self._world()
        if world > 1:
            labeled = labeled.subset(np.arange(rank, len(labeled), world))
        rows = LabeledBatches(labeled, self.eval_batch_size, self.seed, shuffle=False)
        return DataLoader(rows, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=self._on_cuda())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
