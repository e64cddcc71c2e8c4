"""What an exported model carries beside its graph (`wavegrad.json`), and what every vocoder reports."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

from wavegrad_tf.config import AudioConfig, ConfigError, Consistency, _build
from wavegrad_tf.errors import UserError

# Frames one SavedModel request may hold: 50 s at 12.5 ms hops; longer input goes in chunks.
DEFAULT_MAX_FRAMES = 4000
FILENAME = "wavegrad.json"


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

    @property
    def iterations(self) -> int:
        return len(self.betas)

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
        if not isinstance(data, dict) or not isinstance(data.get("audio"), dict) or not isinstance(
                data.get("betas"), list) or not data["betas"]:
            raise MetadataError(f"{source}: expected an object with 'audio' (feature settings) and 'betas' "
                                "(a non-empty list); re-export the model")
        try:
            audio = _build(AudioConfig, data["audio"], "audio")
            audio.validate()
            return cls(audio=audio, betas=tuple(float(b) for b in data["betas"]),
                       max_frames=data.get("max_frames"),
                       # Exports before the rename called it chunk_frames: they still load.
                       signature_frames=tuple(data.get("signature_frames", data.get("chunk_frames", ()))),
                       consistency=_build(Consistency, data.get("consistency") or {}, "consistency"))
        except (ConfigError, TypeError, ValueError) as e:
            raise MetadataError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Metadata":
        path = Path(path)
        if not path.exists():
            raise MetadataError(f"{path}: missing (the exporters write it beside the model)")
        return cls.from_json(path.read_text(), str(path))
