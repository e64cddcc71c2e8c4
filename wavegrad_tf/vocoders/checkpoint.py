"""A training run (or a pretrained model) vocoding with its Keras network: any schedule, precision and consistency."""

from __future__ import annotations

from typing import Optional

import numpy as np
from absl import logging

from wavegrad_tf import hardware, schedules
from wavegrad_tf.config import Config, Consistency
from wavegrad_tf.runs import Run
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder
from wavegrad_tf.vocoders.source import RUN_OPTIONS, ModelSource


class KerasVocoder(Vocoder):
    """The network of `cfg` sampled with `betas` (the config's inference schedule by default) and `consistency`
    (the config's by default)."""

    def __init__(self, cfg: Config, network, betas=None, chunk_frames: int = 400, name: str = "WaveGrad",
                 consistency: Optional[Consistency] = None):
        import tensorflow as tf

        from wavegrad_tf import diffusion

        self.cfg, self.network = cfg, network
        betas = schedules.schedule_for(cfg) if betas is None else np.asarray(betas, np.float64)
        consistency = consistency or Consistency.of(cfg)
        self.metadata = Metadata(audio=cfg.audio, betas=tuple(float(b) for b in betas), consistency=consistency)
        projection = "" if consistency.kind == "none" else f", {consistency.kind} consistency"
        self.name, self.chunk_frames = f"{name} ({len(betas)} steps{projection})", chunk_frames
        # One traced function per vocoder: repeated chunks and calls reuse its traces.
        eps = tf.function(lambda y, m, c: network([y, m, c], training=False), reduce_retracing=True, autograph=False)
        self._sample = diffusion.Sampler(eps, cfg, betas, consistency)

    @classmethod
    def from_run(cls, run, schedule=None, iterations: Optional[int] = None, precision: str = "auto",
                 chunk_frames: int = 400, consistency: Optional[dict] = None) -> "KerasVocoder":
        """A run (a `Run` or what names one) with its newest intact checkpoint's averaged weights, computing in `precision`
        (`hardware.vocoding_precision`); `consistency` replaces parts of the config's (kind, iterations, steps)."""
        run = Run.open(run)
        choice, betas, chosen = _sampling(run.config, schedule, iterations, precision, consistency)
        if choice.warning:
            logging.warning(choice.warning)
        network = run.load_network(dtype=hardware.KERAS_POLICIES[choice.precision])
        suffix = "" if choice.precision == "float32" else f", {choice.precision}"
        return cls(run.config, network, betas, chunk_frames, name=f"WaveGrad{suffix}", consistency=chosen)

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        return self._sample(mel[None], noise, start_sample).numpy()[0]


def _sampling(cfg: Config, schedule, iterations, precision, consistency):
    """(precision choice, betas, consistency) the options ask of a run with config `cfg`, each checked."""
    choice = hardware.vocoding_precision(precision or "auto", hardware.this_machine())
    return choice, schedules.schedule_for(cfg, iterations, schedule), Consistency.of(cfg, **(consistency or {}))


class RunSource(ModelSource):
    kind = "run"
    description = "a training run folder or a pretrained name"
    options = RUN_OPTIONS

    def __init__(self, run: Run, flag: str = "--model"):
        super().__init__(run.name, flag)
        self.run = run

    @classmethod
    def claim(cls, spec: str, flag: str) -> Optional["RunSource"]:
        run = Run.find(spec, flag)
        return None if run is None else cls(run, flag)

    @property
    def audio_cfg(self):
        return self.run.config.audio

    def check(self, schedule=None, iterations=None, precision=None, consistency=None, **others) -> None:
        _sampling(self.run.config, schedule, iterations, precision, consistency)

    def load(self, schedule=None, iterations=None, precision=None, consistency=None, **others) -> KerasVocoder:
        return KerasVocoder.from_run(self.run, schedule, iterations, precision or "auto", consistency=consistency)
