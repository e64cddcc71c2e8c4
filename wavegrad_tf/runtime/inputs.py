"""What comes in and goes out of a vocoder, checked before any work is done: mels, audio files, output paths.

Long input is read in blocks (audio decoded, mixed down, resampled and analysed as a stream), so memory
does not grow with its length.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np
import soundfile as sf
import soxr

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.audio import AUDIO_EXTENSIONS
from wavegrad_tf.config import AudioConfig
from wavegrad_tf.errors import UserError

BLOCK_SECONDS = 30.0
MEL_BLOCK = 2000  # frames


class InputError(UserError):
    """Input a vocoder cannot use; the message names it, what was expected and what came."""


def check_mel(mel, audio_cfg: AudioConfig, source: str = "mel") -> np.ndarray:
    """A [frames, n_mels] float32 array of plausible feature values, or an InputError saying what was expected."""
    n_mels = audio_cfg.n_mels
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise InputError(f"{source}: expected a 2-D log-mel [frames, {n_mels}], got shape {mel.shape}")
    if mel.shape[1] != n_mels:
        hint = " (it looks transposed: save it as [frames, n_mels])" if mel.shape[0] == n_mels else ""
        raise InputError(f"{source}: expected {n_mels} mel bins in the last axis, got shape {mel.shape}{hint}")
    if mel.shape[0] == 0:
        raise InputError(f"{source}: expected at least one frame, got 0")
    if not np.issubdtype(mel.dtype, np.floating):
        raise InputError(f"{source}: expected a float array, got {mel.dtype}")
    if not np.all(np.isfinite(mel)):
        raise InputError(f"{source}: contains NaN or inf")
    low, high = mel_lib.plausible_range(audio_cfg)
    if mel.min() < low or mel.max() > high:
        raise InputError(f"{source}: values from {mel.min():.4g} to {mel.max():.4g}, expected log-mel features in "
                         f"[{low:.3g}, {high:.3g}] (ln of the mel, floor {audio_cfg.log_floor:g}, offset "
                         f"{audio_cfg.mel_offset:g}, scale {audio_cfg.mel_scale:g}): is it scaled another way?")
    return mel.astype(np.float32)


def check_output(path: str | os.PathLike, inputs=()) -> Path:
    """An output audio path that can be written, checked before any work: extension, folder, and that it is none
    of `inputs` (a recording vocoded onto itself would be lost)."""
    path = Path(path)
    for source in inputs:
        if Path(source).exists() and path.exists() and os.path.samefile(source, path) or \
                Path(source).resolve() == path.resolve():
            raise InputError(f"--output {path}: is the input {source}; expected another file name (the input "
                             "would be overwritten)")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise InputError(f"--output {path}: expected a {'/'.join(AUDIO_EXTENSIONS)} file name")
    if path.is_dir():
        raise InputError(f"--output {path}: is a folder, expected a file name")
    if not path.parent.is_dir():
        raise InputError(f"--output {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"--output {path}: folder {path.parent} is not writable")
    return path


def open_input(path: str | os.PathLike, audio_cfg: AudioConfig) -> tuple[Iterator[np.ndarray], Optional[int], float]:
    """(mel blocks [frames, n_mels], number of output samples or None, seconds of input) for a .npy log-mel or
    an audio file, checked before anything is vocoded. The .npy is memory-mapped; audio is streamed."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--input {path}: is a folder, expected a .npy log-mel or a {'/'.join(AUDIO_EXTENSIONS)} file")
    if not path.exists():
        raise InputError(f"--input {path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            mel = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):  # not .npy data (numpy takes it for a pickle), a cut header
            raise InputError(f"--input {path}: not a NumPy .npy array; expected a float array [frames, "
                             f"{audio_cfg.n_mels}] saved with numpy.save") from None
        if not isinstance(mel, np.ndarray):  # an .npz archive of several arrays, named .npy
            raise InputError(f"--input {path}: an .npz archive ({', '.join(mel.files)[:80]}); expected one float "
                             f"array [frames, {audio_cfg.n_mels}] saved with numpy.save")
        if mel.ndim != 2:
            check_mel(mel, audio_cfg, str(path))  # raises, naming the shape
        blocks = range(0, max(len(mel), 1), MEL_BLOCK)
        for begin in blocks:  # every value checked before any work, a block at a time
            check_mel(mel[begin:begin + MEL_BLOCK], audio_cfg, str(path))
        return ((np.asarray(mel[b:b + MEL_BLOCK], np.float32) for b in blocks), None,
                len(mel) * audio_cfg.hop_length / audio_cfg.sample_rate)
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise InputError(f"--input {path}: expected a .npy log-mel or a {'/'.join(AUDIO_EXTENSIONS)} file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile's several error types for foreign or truncated data
        raise InputError(f"--input {path}: not readable audio ({str(e).strip()})") from None
    samples = int(round(info.frames * audio_cfg.sample_rate / info.samplerate))
    if samples <= audio_cfg.win_length // 2:
        raise InputError(f"--input {path}: {info.frames} samples at {info.samplerate} Hz, expected more than "
                         f"{audio_cfg.win_length // 2} at {audio_cfg.sample_rate} Hz (one analysis half-window)")
    return log_mel_blocks(audio_blocks(path, audio_cfg.sample_rate), audio_cfg), samples, info.frames / info.samplerate


def audio_blocks(path: str | os.PathLike, sample_rate: int, block_seconds: float = BLOCK_SECONDS
                 ) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an audio file at `sample_rate`: decoded, mixed down and resampled as a stream
    (soxr's HQ filter, which librosa's one-shot resampling also uses)."""

    with sf.SoundFile(str(path)) as f:
        resampler = (soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
                     if f.samplerate != sample_rate else None)
        size, start = max(1, int(block_seconds * f.samplerate)), 0
        while True:
            block = f.read(size, dtype="float32", always_2d=True).mean(axis=1)
            if not np.all(np.isfinite(block)):  # a float file can hold them; they would poison every frame after
                at = start + int(np.argmin(np.isfinite(block)))
                raise InputError(f"--input {path}: sample {at} ({at / f.samplerate:.2f} s) is NaN or infinite; "
                                 "expected a recording of finite samples")
            start += len(block)
            last = len(block) < size
            if resampler is not None:
                block = resampler.resample_chunk(block, last=last)
            if len(block):
                yield block.astype(np.float32)
            if last:
                return


def log_mel_blocks(blocks: Iterable[np.ndarray], audio_cfg: AudioConfig, block_frames: int = MEL_BLOCK) -> Iterator[np.ndarray]:
    """`mel.log_mel_spectrogram` (centred, reflect-padded ends) of a signal that arrives in blocks, yielded in
    blocks of at most `block_frames` frames: the same frames, in memory bounded by the block sizes."""
    hop, win, pad = audio_cfg.hop_length, audio_cfg.win_length, audio_cfg.win_length // 2
    buffer = np.zeros(0, np.float32)  # padded signal from frame `next_frame`'s first sample on
    started = False
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        if not started:
            if len(buffer) <= pad:
                continue
            buffer = np.concatenate([buffer[1:pad + 1][::-1], buffer])  # the reflected start
            started = True
        while len(buffer) >= win + hop * (block_frames - 1):  # a full block of frames is here
            yield _frames(buffer[:win + hop * (block_frames - 1)], audio_cfg)
            buffer = buffer[hop * block_frames:]
    if not started:
        raise InputError(f"audio: {len(buffer)} samples, expected more than {pad} (one analysis half-window)")
    buffer = np.concatenate([buffer, buffer[-pad - 1:-1][::-1]])  # the reflected end
    while len(buffer) >= win:
        frames = min(block_frames, 1 + (len(buffer) - win) // hop)
        yield _frames(buffer[:win + hop * (frames - 1)], audio_cfg)
        buffer = buffer[hop * frames:]


def _frames(window: np.ndarray, audio_cfg: AudioConfig) -> np.ndarray:
    return mel_lib.log_mel_spectrogram(window, audio_cfg, center=False, use_tf=False)
