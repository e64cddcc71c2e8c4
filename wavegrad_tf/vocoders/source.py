"""What a backend says about the models it runs: a `ModelSource` subclass per backend, beside its `Vocoder`."""

from __future__ import annotations

import abc
from typing import ClassVar, Optional

from wavegrad_tf.config import AudioConfig
from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime import Vocoder

# What a training run's source takes and an export has baked in.
RUN_OPTIONS = ("schedule", "iterations", "precision", "consistency")


class ModelSource(abc.ABC):
    """What --model (or --init_from) names: its kind, the features it expects, and how to load its vocoder."""

    kind: ClassVar[str]
    description: ClassVar[str]  # one clause of --model's help
    options: ClassVar[tuple] = ()  # the keyword options of `load` it takes beside the common ones

    def __init__(self, spec: str, flag: str = "--model"):
        self.spec, self.flag = spec, flag

    @classmethod
    @abc.abstractmethod
    def claim(cls, spec: str, flag: str) -> Optional["ModelSource"]:
        """A source for `spec` if it names a model of this kind, without loading it."""

    @property
    @abc.abstractmethod
    def audio_cfg(self) -> AudioConfig:
        """The features the model expects."""

    def check(self, **options) -> None:
        """Refuses what `load` would refuse, without loading anything: here, options this kind does not take."""
        given = sorted(k for k, v in options.items() if _given(v) and k not in self.options)
        if any(k in RUN_OPTIONS for k in given):
            raise UserError(f"{self.flag} {self.spec}: an exported model has its schedule, precision and consistency "
                            "baked in; re-export it to change them (--schedule, --iterations, --precision and "
                            "--consistency* apply to training runs)")

    @abc.abstractmethod
    def load(self, **options) -> Vocoder:
        """The vocoder, with the options this kind takes (the others must be None)."""


def _given(value) -> bool:
    """An option asked for: not left to the model (None, precision "auto", a consistency with no part given)."""
    if isinstance(value, dict):
        return any(v is not None for v in value.values())
    return value is not None and value != "auto"
