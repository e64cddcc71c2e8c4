"""A training run (or a pretrained model) vocoding with its Keras network: any schedule, precision and consistency."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging

from wavegrad_tf import diffusion, hardware, runs, schedules
from wavegrad_tf.config import Config, Consistency
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder


class KerasVocoder(Vocoder):
    """The network of `cfg` sampled with `betas` (the config's inference schedule by default) and `consistency`
    (the config's by default)."""

    def __init__(self, cfg: Config, model, betas=None, chunk_frames: int = 400, name: str = "WaveGrad",
                 consistency: Optional[Consistency] = None):
        self.cfg, self.model = cfg, model
        betas = schedules.schedule_for(cfg) if betas is None else np.asarray(betas, np.float64)
        consistency = consistency or Consistency.of(cfg)
        self.metadata = Metadata(audio=cfg.audio, betas=tuple(float(b) for b in betas), consistency=consistency)
        projection = "" if consistency.kind == "none" else f", {consistency.kind} consistency"
        self.name, self.chunk_frames = f"{name} ({len(betas)} steps{projection})", chunk_frames
        # One traced function per vocoder: repeated chunks and calls reuse its traces.
        eps = tf.function(lambda y, m, c: model([y, m, c], training=False), reduce_retracing=True, autograph=False)
        self._sample = diffusion.Sampler(eps, cfg, betas, consistency)

    @classmethod
    def from_run(cls, run: str | os.PathLike, schedule=None, iterations: Optional[int] = None,
                 precision: str = "auto", chunk_frames: int = 400, consistency: Optional[dict] = None) -> "KerasVocoder":
        """A training run's folder, with the newest intact checkpoint's averaged weights, computing in
        `precision` (`hardware.vocoding_precision`); `consistency` replaces parts of the config's (kind,
        iterations, steps)."""
        choice = hardware.vocoding_precision(precision, hardware.this_machine())
        if choice.warning:
            logging.warning(choice.warning)
        cfg = runs.read_config(run)
        betas = schedules.schedule_for(cfg, iterations, schedule)
        chosen = Consistency.of(cfg, **(consistency or {}))
        _, model = runs.load_model(run, dtype=hardware.KERAS_POLICIES[choice.precision])
        suffix = "" if choice.precision == "float32" else f", {choice.precision}"
        return cls(cfg, model, betas, chunk_frames, name=f"WaveGrad{suffix}", consistency=chosen)

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        return self._sample(mel[None], noise, start_sample).numpy()[0]
