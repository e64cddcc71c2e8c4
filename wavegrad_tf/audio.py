"""Audio file I/O: decode (soundfile), mix down, resample (soxr via librosa), and sanity checks."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from wavegrad_tf.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
# The bundled corpus: what training uses without --data_dir.
DEMO_CORPUS = Path(__file__).resolve().parent / "demo_data" / "speech"
# Peak below -60 dBFS: nothing a vocoder can learn from.
SILENCE_PEAK = 1e-3


class AudioError(UserError):
    """A file that cannot be used; `reason` is a short tag (corrupt, empty, too-short, silent)."""

    def __init__(self, path, reason: str, detail: str = ""):
        self.path, self.reason = str(path), reason
        self.description = reason + (f" ({detail})" if detail else "")
        super().__init__(f"{path}: {self.description}")


def list_audio_files(data_dir: str | os.PathLike, flag: str = "--data_dir") -> list[Path]:
    """Files of an LJSpeech-style `metadata.csv` (id|text|... -> wavs/<id>.wav), else every audio file below."""
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"{flag} {root}: not a folder")
    meta = root / "metadata.csv"
    if meta.exists():
        try:
            with open(meta, newline="", encoding="utf-8") as f:
                ids = [row[0] for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE) if row]
        except UnicodeDecodeError as e:
            raise UserError(f"{meta}: not UTF-8 text (byte {e.start}); expected LJSpeech's id|text lines") from None
        # An id names a file in wavs/: one with a path in it (../../elsewhere/x) would read outside --data_dir.
        outside = [i for i in ids if not i or "/" in i or "\\" in i or i in (".", "..")]
        if outside:
            raise UserError(f"{meta}: id {outside[0]!r} is not a file name; expected ids of files in "
                            f"{root / 'wavs'} ({len(outside)} such ids)")
        return [root / "wavs" / f"{i}.wav" for i in ids]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"{flag} {root}: no {'/'.join(AUDIO_EXTENSIONS)} files and no metadata.csv")
    return files


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at `sample_rate`; any rate and channel count in, AudioError on a bad file."""
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises several types for truncated or foreign data
        raise AudioError(path, "corrupt", str(e).strip()) from None
    if audio.size == 0:
        raise AudioError(path, "empty", "no samples")
    audio = audio.mean(axis=1)
    if sr != sample_rate:
        import librosa  # only here: its numba import costs the runtimes 140 MB

        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return audio.astype(np.float32)


def check_audio(audio: np.ndarray, path, min_samples: int) -> None:
    if len(audio) < min_samples:
        raise AudioError(path, "too-short", f"{len(audio)} samples, need at least {min_samples}")
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak):
        raise AudioError(path, "corrupt", "non-finite samples")
    if peak < SILENCE_PEAK:
        raise AudioError(path, "silent", f"peak {peak:.2e} below {SILENCE_PEAK:g}")


def save_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    sf.write(path, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")
