"""What an exported model carries beside its graph (`wavegrad.json`), and what every vocoder reports."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

from absl import logging

from wavegrad_tf.config import AudioConfig, Consistency, _build, _show as _short
from wavegrad_tf.errors import UserError
from wavegrad_tf.hardware import KERAS_POLICIES
from wavegrad_tf.schedules import get_schedule

# Frames one SavedModel request may hold: 50 s at 12.5 ms hops; longer input goes in chunks.
DEFAULT_MAX_FRAMES = 4000
FILENAME = "wavegrad.json"


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class MetadataError(UserError):
    """A wavegrad.json that is missing, malformed or does not fit its model; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Metadata:
    """audio: the features the model expects; betas: its baked-in schedule; consistency: the sampler's baked-in
    projection; max_frames: the SavedModel's largest request; signature_frames: the frame counts of a static-shape
    TFLite file's signatures."""

    audio: AudioConfig
    betas: tuple[float, ...]
    max_frames: Optional[int] = None
    signature_frames: tuple[int, ...] = ()
    consistency: Consistency = Consistency()
    precision: str = "float32"  # what the sampler computes in

    @property
    def iterations(self) -> int:
        return len(self.betas)

    @classmethod
    def plan(cls, cfg, schedule=None, iterations: Optional[int] = None, precision: Optional[str] = None,
             consistency: Optional[dict] = None, **fields) -> "Metadata":
        """How a model of `cfg` samples, decided once, each part checked: the config's schedule, consistency and
        precision ("auto": this machine's choice, `hardware.vocoding_precision`), each replaced where an option is
        given (`consistency`: the parts to replace: kind, iterations, steps). What a Keras vocoder runs and every
        export writes (`fields`: its signature_frames or max_frames)."""
        from wavegrad_tf import hardware, schedules

        choice = hardware.vocoding_precision(precision or "auto", hardware.this_machine())
        if choice.warning:
            logging.warning(choice.warning)
        return cls(audio=cfg.audio, betas=tuple(float(b) for b in schedules.schedule_for(cfg, iterations, schedule)),
                   consistency=Consistency.of(cfg, **(consistency or {})), precision=choice.precision, **fields)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / FILENAME
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_json(cls, text: str, source: str = FILENAME) -> "Metadata":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise MetadataError(f"{source}: not JSON ({e.msg} at line {e.lineno}); re-export the model") from None
        except RecursionError:  # the decoder recurses once per level of nesting
            raise MetadataError(f"{source}: nested deeper than Python can read; expected wavegrad.json's object") from None
        if not isinstance(data, dict) or not isinstance(data.get("audio"), dict) or not isinstance(
                data.get("betas"), list) or not data["betas"]:
            raise MetadataError(f"{source}: expected an object with 'audio' (feature settings) and 'betas' "
                                "(a non-empty list); re-export the model")
        try:
            audio = _build(AudioConfig, data["audio"], "audio")
            audio.validate()
            try:
                get_schedule(data["betas"])
            except UserError as e:
                raise MetadataError(f"betas: {str(e).removeprefix('schedule: ')}") from None
            max_frames, frames = data.get("max_frames"), data.get("signature_frames", data.get("chunk_frames", []))
            if max_frames is not None and not _whole(max_frames):
                raise MetadataError(f"max_frames: expected a whole number >= 1 or null, got {_short(max_frames)}")
            if not isinstance(frames, list) or not all(_whole(n) for n in frames):
                raise MetadataError(f"signature_frames: expected a list of whole numbers >= 1, got {_short(frames)}")
            consistency = data.get("consistency") or {}
            if not isinstance(consistency, dict):
                raise MetadataError(f"consistency: expected an object (kind, iterations, steps), got {_short(consistency)}")
            precision = data.get("precision", "float32")  # exports before it was recorded computed in float32
            if precision not in KERAS_POLICIES:
                raise MetadataError(f"precision: expected one of {list(KERAS_POLICIES)}, got {_short(precision)}")
            return cls(audio=audio, betas=tuple(float(b) for b in data["betas"]), max_frames=max_frames,
                       # Exports before the rename called it chunk_frames: they still load.
                       signature_frames=tuple(frames),
                       consistency=_build(Consistency, consistency, "consistency").validate(), precision=precision)
        except (UserError, TypeError, ValueError) as e:
            raise MetadataError(f"{source}: {e}; re-export the model") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Metadata":
        path = Path(path)
        if not path.exists():
            raise MetadataError(f"{path}: missing (the exporters write it beside the model)")
        return cls.from_json(path.read_text(), str(path))
