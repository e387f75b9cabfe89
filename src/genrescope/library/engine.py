"""``genrescope tag`` on the engines (:mod:`genrescope.engines`): the per-file task and the
progress line.

Each worker (a local process or a Ray actor) loads the model once and decodes, computes
features and runs the model for one file at a time (one intra-op thread each, so ``-j N``
keeps N cores busy); the parent receives small result dicts as they finish and does the
tag writes, the journal and the report meanwhile. ``-j 1`` is the one-process loop, whose
model calls use every core.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genrescope.library.core import PredictorFactory, analyse, make_predictor


@dataclass(frozen=True)
class TagTask:
    """A file -> its :func:`~genrescope.library.core.analyse` dict, with the model loaded once per worker
    (by ``predictor_factory`` when given, else :func:`~genrescope.library.core.make_predictor`)."""

    model: str
    runtime: str
    windows: int
    predictor_factory: PredictorFactory | None = None
    isolate: ClassVar[bool] = False  # -j 1 runs here, with every thread

    def open(self, threads: int | None):
        if self.predictor_factory is not None:
            predictor = self.predictor_factory(self.model)
        else:
            predictor = make_predictor(self.model, runtime=self.runtime, threads=threads)
        return lambda path: analyse(predictor, path, self.windows)
