"""A SavedModel export (export/saved_model.py) vocoding through its `vocode_with_noise` signature."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from wavegrad_tf import hardware
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME


class SavedModelVocoder(Vocoder):
    def __init__(self, path: str | os.PathLike):
        """`path`: a version folder (`wavegrad_tf.vocoders.version_folder` finds a model folder's highest)."""
        path = Path(path)
        self.metadata = Metadata.load(path / "assets.extra" / FILENAME)
        self.chunk_frames = min(self.chunk_frames, self.metadata.max_frames or self.chunk_frames)
        self.name = f"WaveGrad SavedModel ({self.metadata.iterations} steps)"
        hardware.configure_tensorflow()
        self._vocode = tf.saved_model.load(str(path)).signatures["vocode_with_noise"]

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        frames = len(mel)
        return self._vocode(mel=mel[None], lengths=np.array([frames], np.int32), noise=noise.per_step(
            self.metadata.iterations, start_sample, frames * self.metadata.audio.hop_length))["audio"].numpy()[0]
