"""Mels as a TTS model makes them, from a recording's exact mel: what `evaluate --mel tts_like` vocodes, so a vocoder
and its consistency projection are judged on the input they will get, not only on analysis-resynthesis.

A TTS model's mel differs from the recording's in three ways, each imitated here (NumPy, deterministic per seed):
1. Over-smoothing: acoustic models trained with L1/L2 losses (Tacotron 2, FastSpeech 2) predict the conditional
   mean, which blurs fine structure in time and frequency (why GAN post-nets exist): a Gaussian blur of
   `time_sigma` frames and `mel_sigma` bands.
2. Prediction error: `noise` nats of Gaussian noise on each log-mel value, smoothed like the mel (errors of a
   regression model are correlated across neighbouring bins and frames, not white).
3. Framing: a TTS front end rarely frames audio exactly as the vocoder's features do (centring, padding, hop
   rounding): the mel is resampled `shift` frames later, by linear interpolation.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

TIME_SIGMA, MEL_SIGMA, NOISE, SHIFT = 1.0, 1.0, 0.1, 0.5


def tts_like(log_mel: np.ndarray, seed: int = 0, time_sigma: float = TIME_SIGMA, mel_sigma: float = MEL_SIGMA,
             noise: float = NOISE, shift: float = SHIFT) -> np.ndarray:
    """A log-mel [frames, n_mels] as a TTS model would predict it (the module's three changes), same shape."""
    log_mel = np.asarray(log_mel, np.float64)
    blurred = gaussian_filter(log_mel, (time_sigma, mel_sigma), mode="nearest")
    error = gaussian_filter(np.random.default_rng(seed).standard_normal(log_mel.shape), (time_sigma, mel_sigma))
    error *= noise / max(error.std(), 1e-12)  # smoothing shrinks the noise: its std is set after
    frames = np.clip(np.arange(len(log_mel)) + shift, 0, len(log_mel) - 1)
    low = np.floor(frames).astype(int)
    high = np.minimum(low + 1, len(log_mel) - 1)
    weight = (frames - low)[:, None]
    moved = (1 - weight) * (blurred + error)[low] + weight * (blurred + error)[high]
    return np.clip(moved, log_mel.min(), log_mel.max()).astype(np.float32)
