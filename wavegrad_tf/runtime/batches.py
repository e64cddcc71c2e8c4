"""Many mels through one vocoder: a backend that vocodes batches (`Vocoder.batches`: the Keras network and the
SavedModel) takes the mels that fit one chunk in batches of one length; the others take each mel alone.

An item's audio never depends on what else is vocoded: its noise is its own (`ItemNoise`, keyed per item); it is
padded with silence to its own bucket (its frame count rounded up to a multiple of BUCKET_FRAMES, never to the
longest of its batch, since the network and the projection see past an item's end); and every batch of a bucket
has the same size (the last filled with repeats), so the same shapes run whether an item is vocoded alone or
among thousands. So a file's audio in a corpus job is not quite what `Vocoder.vocode` gives it alone (which every
backend computes at the mel's own length, so that they all agree): its last frames see the bucket's silence, and
the batch size changes the float rounding by about 1e-6 (oneDNN picks its kernels by shape). A backend that does
not batch (a .tflite file, TF Serving) vocodes each file as `vocode` does.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional, Union

import numpy as np

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.runtime.noise import ItemNoise, PositionalNoise
from wavegrad_tf.runtime.vocoder import Vocoder

BUCKET_FRAMES = 16
# Frames a batch holds when --batch_size is not given: four default chunks (memory of four chunks' activations).
BATCH_FRAMES = 1600

Item = tuple  # (key, mel [frames, n_mels], seed)
Result = tuple  # (key, audio [frames * hop], or the exception that stopped it)


def bucket(frames: int) -> int:
    return -(-frames // BUCKET_FRAMES) * BUCKET_FRAMES


def batch_size_for(bucket_frames: int, batch_size: Optional[int] = None) -> int:
    return batch_size or max(1, BATCH_FRAMES // bucket_frames)


def vocode_items(vocoder: Vocoder, items: Iterable[Item], batch_size: Optional[int] = None) -> Iterator[Result]:
    """(key, audio or exception) of every item, as each is ready (batched items once their batch fills)."""
    pending: dict[int, list[Item]] = {}
    for key, mel, seed in items:
        frames = len(mel)
        if not vocoder.batches or bucket(frames) > min(vocoder.chunk_frames, vocoder.largest_chunk_frames() or frames):
            yield key, _alone(vocoder, mel, seed)
            continue
        group = pending.setdefault(bucket(frames), [])
        group.append((key, mel, seed))
        if len(group) == batch_size_for(bucket(frames), batch_size):
            yield from _batch(vocoder, bucket(frames), group, batch_size)
            group.clear()
    for frames, group in pending.items():
        if group:
            yield from _batch(vocoder, frames, group, batch_size)


def _alone(vocoder: Vocoder, mel: np.ndarray, seed: int) -> Union[np.ndarray, Exception]:
    try:
        return vocoder.vocode(mel, seed)
    except (FloatingPointError, ValueError) as e:  # one item's failure is that item's
        return e


def _batch(vocoder: Vocoder, frames: int, group: list[Item], batch_size: Optional[int]) -> Iterator[Result]:
    size, hop = batch_size_for(frames, batch_size), vocoder.metadata.audio.hop_length
    full = group + [group[-1]] * (size - len(group))  # always the same shapes for this bucket
    mels = np.full((size, frames, vocoder.metadata.audio.n_mels), mel_lib.silence(vocoder.metadata.audio), np.float32)
    for i, (_, mel, _) in enumerate(full):
        mels[i, :len(mel)] = mel
    audio = np.asarray(vocoder.synthesize_batch(mels, ItemNoise([PositionalNoise(seed) for _, _, seed in full])),
                       np.float32)
    for i, (key, mel, _) in enumerate(group):
        out = audio[i, :len(mel) * hop]
        yield key, out if np.all(np.isfinite(out)) else FloatingPointError(
            f"{vocoder.name}: non-finite audio for {len(mel)} frames")
