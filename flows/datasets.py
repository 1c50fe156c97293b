"""On-the-fly training data: the simulator itself is the data source.

A :class:`StreamDataModule` subclass says how to make one example from a random stream
(``make_example``) and how to batch examples (``collate``). Streams are seeded per run,
per distributed rank and per DataLoader worker, so runs are reproducible and ranks never
repeat each other. Validation uses a fixed, seeded, held-out stream made once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

VALIDATION_SEED_OFFSET = 1_000_003


class SimulatorStream(IterableDataset):
    """An endless (or ``length``-long) stream of examples from ``make_example(rng)``."""

    def __init__(
        self,
        make_example: Callable[[np.random.Generator], Any],
        seed: int,
        rank: int = 0,
        length: int | None = None,
    ):
        super().__init__()
        self.make_example = make_example
        self.seed = seed
        self.rank = rank
        self.length = length

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.rank, worker]))
        n = None if self.length is None else len(range(worker, self.length, workers))
        k = 0
        while n is None or k < n:
            example = self.make_example(rng)
            if example is None:  # a rejected draw (invalid or constant program): draw again
                continue
            k += 1
            yield example


class StreamDataModule(pl.LightningDataModule):
    """Base for every module's data. Subclasses define ``make_example`` and ``collate``.

    ``seed`` fixes the training streams; validation draws ``val_size`` examples from a
    separate seed, once, so every epoch and every rank validates on the same examples.
    """

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0, val_size: int = 256):
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.val_size = val_size
        self._val: list[Any] | None = None

    def make_example(self, rng: np.random.Generator) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def collate(self, examples: list[Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_rank) if trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        stream = SimulatorStream(self.make_example, self.seed, self.rank)
        return DataLoader(
            stream, batch_size=self.batch_size, collate_fn=self.collate, num_workers=self.num_workers
        )

    def validation_examples(self) -> list[Any]:
        """The fixed held-out examples (the same on every rank)."""
        if self._val is None:
            stream = SimulatorStream(self.make_example, self.seed + VALIDATION_SEED_OFFSET, 0, self.val_size)
            self._val = list(stream)
        return self._val

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.validation_examples(), batch_size=self.batch_size, collate_fn=self.collate)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
