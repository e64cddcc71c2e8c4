"""A SavedModel export (export/saved_model.py) vocoding through its `vocode_with_noise` signature."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional

import numpy as np

from wavegrad_tf import hardware
from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime import Metadata, PositionalNoise, Vocoder
from wavegrad_tf.runtime.metadata import FILENAME
from wavegrad_tf.vocoders.source import ModelSource


class SavedModelVocoder(Vocoder):
    def __init__(self, path: str | os.PathLike, metadata: Optional[Metadata] = None):
        """`path`: a version folder (`version_folder` finds a model folder's highest); `metadata`: its wavegrad.json,
        if the caller read it already."""
        import tensorflow as tf

        path = Path(path)
        self.metadata = metadata or Metadata.load(path / "assets.extra" / FILENAME)
        self.chunk_frames = min(self.chunk_frames, self.metadata.max_frames or self.chunk_frames)
        self.name = f"WaveGrad SavedModel ({self.metadata.iterations} steps)"
        hardware.configure_tensorflow()
        self._vocode = tf.saved_model.load(str(path)).signatures["vocode_with_noise"]

    batches = True

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        return self._batch(mel[None], start_sample, noise)[0]

    def synthesize_batch(self, mels: np.ndarray, noise) -> np.ndarray:
        return self._batch(mels, 0, noise)

    def _batch(self, mels: np.ndarray, start_sample: int, noise) -> np.ndarray:
        batch, frames = mels.shape[:2]
        return self._vocode(mel=mels, lengths=np.full(batch, frames, np.int32), noise=noise.per_step(
            self.metadata.iterations, start_sample, frames * self.metadata.audio.hop_length))["audio"].numpy()


def version_folder(path: str | os.PathLike, flag: str = "--model") -> Path:
    """A SavedModel version folder, or a model folder's highest version (what TF Serving serves)."""
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").exists()),
                      key=lambda p: int(p.name)) if path.is_dir() else []
    if not versions:
        raise UserError(f"{flag} {path}: neither a training run's folder nor a SavedModel (no saved_model.pb and no "
                        "numbered version folder holding one)")
    return versions[-1]


class SavedModelSource(ModelSource):
    kind = "saved_model"
    description = "a SavedModel folder (export.saved_model's, or one version of it)"

    @classmethod
    def claim(cls, spec: str, flag: str) -> Optional["SavedModelSource"]:
        return cls(spec, flag) if Path(spec).is_dir() else None

    @functools.cached_property
    def folder(self) -> Path:
        return version_folder(self.spec, self.flag)

    @functools.cached_property
    def metadata(self) -> Metadata:
        """Its wavegrad.json, read once per load."""
        return Metadata.load(self.folder / "assets.extra" / FILENAME)

    @property
    def audio_cfg(self):
        return self.metadata.audio

    def load(self, **options) -> SavedModelVocoder:
        return SavedModelVocoder(self.folder, self.metadata)
