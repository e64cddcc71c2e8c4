"""One interface over what a user evaluates: a training run (Keras checkpoint), a SavedModel export, a
TFLite file, and the Griffin-Lim baseline.

Each has `name`, `audio` (its AudioConfig: what mel it expects), `betas` (None for Griffin-Lim) and
`vocode(mel [frames, n_mels], seed) -> audio [frames * hop]`. The diffusion vocoders key their noise by
sample position, so one seed gives the same noise in every format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from wavegrad_tf.config import AudioConfig


class KerasVocoder:
    """A training run's folder: config.yaml + the latest checkpoint; any schedule."""

    def __init__(self, model_dir: str | os.PathLike, schedule=None, iterations: Optional[int] = None,
                 chunk_frames: int = 400):
        from wavegrad_tf import infer

        self.cfg, self.model = infer.load_model(model_dir)
        self.audio = self.cfg.audio
        self.betas = infer.schedule_for(self.cfg, iterations, schedule)
        self.name, self.chunk_frames = f"WaveGrad ({len(self.betas)} steps)", chunk_frames

    def vocode(self, mel: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        from wavegrad_tf import infer

        return infer.vocode(self.model, self.cfg, mel, self.betas, seed, self.chunk_frames)


class SavedModelVocoder:
    """An export/saved_model.py version folder (or its model folder: the highest version is used)."""

    def __init__(self, path: str | os.PathLike, chunk_frames: int = 400):
        import tensorflow as tf

        path = Path(path)
        if not (path / "saved_model.pb").exists():
            versions = sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
            if not versions:
                raise FileNotFoundError(f"{path}: no saved_model.pb and no numbered version folder")
            path = versions[-1]
        meta_path = path / "assets.extra" / "wavegrad.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: missing (re-export with python -m export.saved_model)")
        meta = json.loads(meta_path.read_text())
        self.audio, self.betas = AudioConfig(**meta["audio"]), np.asarray(meta["betas"])
        self.name, self.chunk_frames = f"WaveGrad SavedModel ({len(self.betas)} steps)", chunk_frames
        self._vocode = tf.saved_model.load(str(path)).signatures["vocode_with_noise"]

    def vocode(self, mel: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        from wavegrad_tf.infer import check_mel, chunked
        from wavegrad_tf.noise import PositionalNoise

        mel, hop, noise = check_mel(mel, self.audio.n_mels), self.audio.hop_length, PositionalNoise(seed)

        def synthesize(begin, end):
            return self._vocode(mel=mel[None, begin:end], lengths=np.array([end - begin], np.int32),
                                noise=noise.per_step(len(self.betas), begin * hop, (end - begin) * hop)
                                )["audio"].numpy()[0]

        return chunked(len(mel), hop, synthesize, self.chunk_frames)


class TFLiteVocoder:
    """A .tflite file from export/tflite.py (wavegrad.json beside it), run with the LiteRT interpreter."""

    def __init__(self, path: str | os.PathLike):
        from wavegrad_tf.litert import LiteRTVocoder

        self.runner = LiteRTVocoder(path)
        self.audio, self.betas = AudioConfig(**self.runner.meta["audio"]), np.asarray(self.runner.meta["betas"])
        self.name = f"WaveGrad {Path(path).stem} TFLite ({len(self.betas)} steps)"

    def vocode(self, mel: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        return self.runner.vocode(mel, seed)


class GriffinLim:
    """The floor a neural vocoder must beat: invert the log-mel to a magnitude (non-negative least squares
    through the same Slaney filterbank), then Griffin-Lim phase recovery (librosa, with momentum)."""

    def __init__(self, audio: AudioConfig, iterations: int = 32):
        self.audio, self.betas, self.iterations = audio, None, iterations
        self.name = f"Griffin-Lim ({iterations} iterations)"

    def vocode(self, mel: np.ndarray, seed: Optional[int] = None) -> np.ndarray:
        import librosa

        from wavegrad_tf.infer import check_mel

        a = self.audio
        mel = check_mel(mel, a.n_mels)
        linear_mel = np.exp(mel.T.astype(np.float64) * a.mel_scale + a.mel_offset)
        magnitude = librosa.feature.inverse.mel_to_stft(
            linear_mel, sr=a.sample_rate, n_fft=a.n_fft, power=a.power, fmin=a.fmin, fmax=a.fmax)
        audio = librosa.griffinlim(magnitude, n_iter=self.iterations, hop_length=a.hop_length,
                                   win_length=a.win_length, n_fft=a.n_fft, window="hann", center=True,
                                   random_state=seed)
        # (frames - 1) * hop samples: padded to frames * hop like the diffusion vocoders' output.
        return np.pad(audio, (0, len(mel) * a.hop_length - len(audio))).astype(np.float32)


def load_vocoder(path: str | os.PathLike, schedule=None, iterations: Optional[int] = None):
    """The vocoder stored at `path`: a training run folder, a SavedModel (version or model folder) or a
    .tflite file. `schedule`/`iterations` apply to training runs; exported graphs have theirs baked in."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--model {path}: no such file or folder")
    if path.is_dir() and (path / "config.yaml").exists():
        return KerasVocoder(path, schedule, iterations)
    if path.suffix != ".tflite" and not path.is_dir():
        raise ValueError(f"--model {path}: expected a training run folder, a SavedModel folder or a .tflite file")
    if schedule is not None or iterations is not None:
        raise ValueError(f"--model {path}: an exported graph has its schedule baked in; re-export it with "
                         "--schedule to change it")
    return TFLiteVocoder(path) if path.suffix == ".tflite" else SavedModelVocoder(path)
