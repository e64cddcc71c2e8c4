"""A training run (or a pretrained model) vocoding with its Keras network: any schedule, precision and consistency."""

from __future__ import annotations

from typing import Optional

import numpy as np

from wavegrad_tf import hardware
from wavegrad_tf.config import Config
from wavegrad_tf.runs import Run
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder
from wavegrad_tf.vocoders.source import RUN_OPTIONS, ModelSource


class KerasVocoder(Vocoder):
    """The network of `cfg` sampled as `metadata` plans it (`Metadata.plan`: the config's schedule, consistency and
    precision, by default)."""

    def __init__(self, cfg: Config, network, metadata: Optional[Metadata] = None, chunk_frames: int = 400,
                 name: str = "WaveGrad"):
        import tensorflow as tf

        from wavegrad_tf import diffusion

        self.cfg, self.network = cfg, network
        self.metadata = metadata = metadata or Metadata.plan(cfg)
        projection = "" if metadata.consistency.kind == "none" else f", {metadata.consistency.kind} consistency"
        precision = "" if metadata.precision == "float32" else f", {metadata.precision}"
        self.name = f"{name}{precision} ({metadata.iterations} steps{projection})"
        self.chunk_frames = chunk_frames
        # One traced function per vocoder: repeated chunks and calls reuse its traces.
        eps = tf.function(lambda y, m, c: network([y, m, c], training=False), reduce_retracing=True, autograph=False)
        self._sample = diffusion.Sampler(eps, cfg, metadata.betas, metadata.consistency)

    @classmethod
    def from_run(cls, run, metadata: Optional[Metadata] = None, chunk_frames: int = 400) -> "KerasVocoder":
        """A run (a `Run` or what names one) with its newest intact checkpoint's averaged weights, sampled as
        `metadata` plans (default: the run's config's plan), in its precision."""
        from wavegrad_tf.model import load_network  # Keras: only when a run is loaded

        run = Run.open(run)
        metadata = metadata or Metadata.plan(run.config)
        network = load_network(run, dtype=hardware.KERAS_POLICIES[metadata.precision])
        return cls(run.config, network, metadata, chunk_frames)

    batches = True

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        return self._sample(mel[None], noise, start_sample).numpy()[0]

    def synthesize_batch(self, mels: np.ndarray, noise) -> np.ndarray:
        return self._sample(mels, noise).numpy()


class RunSource(ModelSource):
    kind = "run"
    description = "a training run folder or a pretrained name"
    options = RUN_OPTIONS

    def __init__(self, run: Run, flag: str = "--model"):
        super().__init__(run.name, flag)
        self.run, self._plans = run, {}

    @classmethod
    def claim(cls, spec: str, flag: str) -> Optional["RunSource"]:
        run = Run.find(spec, flag)
        return None if run is None else cls(run, flag)

    @property
    def audio_cfg(self):
        return self.run.config.audio

    def check(self, schedule=None, iterations=None, precision=None, consistency=None, **others) -> None:
        self.plan(schedule, iterations, precision, consistency)

    def plan(self, schedule=None, iterations=None, precision=None, consistency=None) -> Metadata:
        """The sampling plan of these options, made once (check and load ask for the same)."""
        key = repr((schedule, iterations, precision, consistency))
        if key not in self._plans:
            self._plans[key] = Metadata.plan(self.run.config, schedule, iterations, precision, consistency)
        return self._plans[key]

    def load(self, schedule=None, iterations=None, precision=None, consistency=None, **others) -> KerasVocoder:
        return KerasVocoder.from_run(self.run, self.plan(schedule, iterations, precision, consistency))
