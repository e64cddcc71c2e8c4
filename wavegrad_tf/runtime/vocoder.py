"""The one vocoder interface: a log-mel in, audio out, whole (`vocode`) or chunk by chunk as each is ready
(`stream`), whatever runs the network (a Keras model, a SavedModel, a LiteRT file, a TF Serving endpoint).

Long mels are vocoded in chunks that overlap by `overlap_frames`. The sampling noise is keyed by absolute
sample position (`PositionalNoise`), so overlapping chunks see the same noise and agree away from their
edges; each overlap is crossfaded over its middle half only, so chunk edges get no weight.
"""

from __future__ import annotations

import abc
from typing import Iterable, Iterator, Optional, Union

import numpy as np

from wavegrad_tf.runtime.inputs import check_mel
from wavegrad_tf.runtime.metadata import Metadata
from wavegrad_tf.runtime.noise import PositionalNoise

MelSource = Union[np.ndarray, Iterable[np.ndarray]]

# The sampler bounds every iterate, and its output, to +-ITERATE_BOUND: |y_n| <= |y_0| + 7 sigma of the noise at
# most, 1 + 7 for a recording's samples at full scale. A backend's audio beyond it did not come from the sampler.
ITERATE_BOUND = 8.0


def fade_in(length: int) -> np.ndarray:
    """0 over the first quarter, linear to 1 over the middle half, 1 over the last quarter."""
    return np.clip((np.arange(length) + 0.5 - length / 4) / (length / 2), 0, 1).astype(np.float32)


class Vocoder(abc.ABC):
    """Subclasses set `metadata` and `name` and implement `synthesize` for one chunk."""

    metadata: Metadata
    name: str
    chunk_frames: int = 400
    overlap_frames: int = 32
    # A smaller first chunk makes the first audio of a stream come sooner.
    first_chunk_frames: Optional[int] = None
    # Whether `synthesize_batch` vocodes several mels in one call (`wavegrad_tf.runtime.batches`).
    batches: bool = False

    def set_chunk_frames(self, frames: int) -> None:
        """Vocodes `frames` mel frames at a time (--chunk_frames), if this backend can: more than twice the overlap,
        and no more than its largest request (a SavedModel's max_frames, a TFLite file's largest signature)."""
        from wavegrad_tf.runtime.inputs import InputError

        largest = self.largest_chunk_frames()
        if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 2 * self.overlap_frames or (
                largest is not None and frames > largest):
            raise InputError(f"--chunk_frames {frames}: expected more than {2 * self.overlap_frames} (twice the "
                             "overlap)" + (f" and at most {largest} ({self.name}'s largest chunk)" if largest else ""))
        self.chunk_frames = frames

    def largest_chunk_frames(self) -> Optional[int]:
        return self.metadata.max_frames

    @abc.abstractmethod
    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        """Audio [frames * hop] for one checked chunk [frames, n_mels] whose first sample is `start_sample`."""

    def synthesize_batch(self, mels: np.ndarray, noise) -> np.ndarray:
        """Audio [batch, frames * hop] for checked mels [batch, frames, n_mels] from sample 0, item i drawing its
        noise as `noise` (an `ItemNoise`) gives it; backends with `batches` only."""
        raise NotImplementedError(f"{self.name} vocodes one mel at a time")

    def vocode(self, mel: MelSource, seed: Optional[int] = None) -> np.ndarray:
        """Audio [frames * hop] for a log-mel [frames, n_mels] (or an iterable of consecutive blocks)."""
        return np.concatenate(list(self.stream(mel, seed)))

    def stream(self, mel: MelSource, seed: Optional[int] = None) -> Iterator[np.ndarray]:
        """Consecutive pieces of `vocode`'s audio, each yielded as soon as no later chunk can change it."""
        if self.chunk_frames <= 2 * self.overlap_frames or (
                self.first_chunk_frames is not None and self.first_chunk_frames <= 2 * self.overlap_frames):
            raise ValueError(f"chunks must exceed twice the overlap ({self.overlap_frames} frames)")
        hop, overlap = self.metadata.audio.hop_length, self.overlap_frames
        frames = _Frames(mel, self.metadata.audio)
        noise = PositionalNoise(seed)
        fade = fade_in(overlap * hop)
        begin, size, tail = 0, self.first_chunk_frames or self.chunk_frames, None
        while True:
            chunk, last = frames.take(begin, begin + size)
            audio = np.array(self.synthesize(chunk, begin * hop, noise), np.float32)
            if not np.all(np.isfinite(audio)):  # never handed on as if it were audio
                raise FloatingPointError(f"{self.name}: non-finite audio for frames {begin} to {begin + len(chunk)}")
            if tail is not None:
                audio[:len(tail)] = audio[:len(tail)] * fade + tail
            if last:
                yield audio
                return
            cut = (len(chunk) - overlap) * hop  # the next chunk starts `overlap` frames before this one ends
            tail = audio[cut:] * (1.0 - fade)
            yield audio[:cut]
            begin, size = begin + len(chunk) - overlap, self.chunk_frames


class _Frames:
    """Frames of a mel array or of an iterable of blocks, checked as they come, kept from the current chunk on."""

    def __init__(self, mel: MelSource, audio):
        self.blocks = iter([mel]) if isinstance(mel, np.ndarray) else iter(mel)
        self.audio, self.offset, self.buffer, self.done = audio, 0, np.zeros((0, audio.n_mels), np.float32), False

    def take(self, begin: int, end: int) -> tuple[np.ndarray, bool]:
        """(frames [begin, end) or up to the end of the mel, whether they are the last)."""
        self.buffer, self.offset = self.buffer[begin - self.offset:], begin
        while not self.done and self.offset + len(self.buffer) <= end:  # one frame more tells if this is the end
            block = next(self.blocks, None)
            if block is None:
                self.done = True
            else:
                self.buffer = np.concatenate([self.buffer, check_mel(block, self.audio)])
        if not len(self.buffer):
            raise ValueError("mel: expected at least one frame, got 0")
        chunk = self.buffer[:end - begin]
        return chunk, self.done and self.offset + len(self.buffer) <= end
