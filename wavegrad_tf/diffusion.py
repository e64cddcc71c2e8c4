"""WaveGrad diffusion: noise schedules, forward noising, and the paper's sampler (Chen et al. 2020, Alg. 1-2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import yaml

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.noise import PositionalNoise  # noqa: F401  (part of this module's API)


def _fibonacci(n: int, b1: float = 1e-6, b2: float = 2e-6) -> np.ndarray:
    betas = [b1, b2]
    while len(betas) < n:
        betas.append(betas[-1] + betas[-2])
    return np.array(betas[:n])


# The paper's demo-page schedules. manual-6 is the hand-picked set lmnt-com/wavegrad ships; its last
# noise level (0.61) is low enough to start from N(0, I). ivanvovk's searched 6 steps end at 0.96 and
# scored worse here (README, "Measured on this machine").
PRESETS: dict[str, Callable[[], np.ndarray]] = {
    "linear-1000": lambda: np.linspace(1e-6, 0.01, 1000),
    "linear-50": lambda: np.linspace(1e-4, 0.05, 50),
    "fibonacci-25": lambda: _fibonacci(25),
    "manual-6": lambda: np.array([1e-4, 1e-3, 1e-2, 5e-2, 2e-1, 5e-1]),
}

Schedule = Union[str, Sequence[float], np.ndarray, os.PathLike]


def get_schedule(spec: Schedule) -> np.ndarray:
    """Betas (float64, [N]) from a preset name, a list of betas, or a .txt/.npy/.yaml/.json file."""
    if isinstance(spec, str) and spec in PRESETS:
        betas = PRESETS[spec]()
    elif isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"schedule {str(spec)!r}: expected one of {sorted(PRESETS)} or an existing file")
        betas = _read_schedule_file(path)
    else:
        betas = np.asarray(spec, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size == 0:
        raise ValueError(f"schedule: expected a non-empty 1-D list of betas, got shape {betas.shape}")
    if not np.all(np.isfinite(betas)) or np.any(betas <= 0) or np.any(betas >= 1):
        raise ValueError("schedule: every beta must be in (0, 1)")
    return betas


def _read_schedule_file(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix in (".yaml", ".yml", ".json"):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            data = data.get("betas")
        if not isinstance(data, list):
            raise ValueError(f"schedule file {path}: expected a list of betas or a mapping with 'betas'")
        return np.asarray(data, dtype=np.float64)
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as e:
        raise ValueError(f"schedule file {path}: expected numbers, one per line ({e})") from None


def noise_levels(betas: np.ndarray) -> np.ndarray:
    """l = [1, sqrt(alpha_bar_1), ..., sqrt(alpha_bar_N)]: the continuous noise level at each step boundary."""
    return np.concatenate([[1.0], np.sqrt(np.cumprod(1.0 - betas))])


def add_noise(audio, noise, noise_level):
    """y_noisy = sqrt(a) * y0 + sqrt(1 - a) * eps, with sqrt(a) = noise_level (per batch item)."""
    level = tf.reshape(tf.cast(noise_level, audio.dtype), [-1, 1])
    return level * audio + tf.sqrt(1.0 - tf.square(level)) * noise


def draw_noise_level(seed, batch_size: int, levels: np.ndarray, continuous: bool):
    """Training conditioning for each item: (noise_level, model input).

    Continuous: a segment s ~ U{1..T}, then sqrt(a) ~ U(l[s], l[s-1]); the model sees sqrt(a).
    Discrete: an index n ~ U{1..T}, sqrt(a) = l[n]; the model sees n / T.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    steps = len(levels) - 1
    table = tf.constant(levels, tf.float32)
    s = tf.random.stateless_uniform([batch_size], seeds[0], minval=1, maxval=steps + 1, dtype=tf.int32)
    if not continuous:
        return tf.gather(table, s), tf.cast(s, tf.float32) / steps
    hi, lo = tf.gather(table, s - 1), tf.gather(table, s)
    u = tf.random.stateless_uniform([batch_size], seeds[1])
    level = lo + u * (hi - lo)
    return level, level


def prior_std(log_mel, cfg):
    """The noise's std per sample, [..., frames * hop], under `cfg.diffusion.prior`; None for N(0, I).

    PriorGrad (Lee et al. 2022): each frame's energy over the training data's largest, clipped to
    [prior_std_min, 1] and held over the frame's hop samples.
    """
    d = cfg.diffusion
    if d.prior == "standard":
        return None
    if d.prior_energy_max is None:
        raise ValueError("diffusion.prior_energy_max: not set (training measures it on its data)")
    std = tf.clip_by_value(mel_lib.frame_energy(log_mel, cfg.audio) / d.prior_energy_max, d.prior_std_min, 1.0)
    return tf.repeat(std, cfg.audio.hop_length, axis=-1)


def model_conditioning(betas: np.ndarray, continuous: bool) -> Optional[np.ndarray]:
    """What the model sees at each sampling step, when it is not the noise level: n / T for discrete models."""
    return None if continuous else np.arange(1, len(betas) + 1) / len(betas)


def sampler_coefficients(betas: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step constants of the paper's Algorithm 2, index n = 0..N-1 for steps 1..N."""
    alphas = 1.0 - betas
    alpha_bar = np.cumprod(alphas)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    return {
        "noise_level": np.sqrt(alpha_bar),
        "eps_scale": betas / np.sqrt(1.0 - alpha_bar),
        "inv_sqrt_alpha": 1.0 / np.sqrt(alphas),
        "sigma": np.sqrt(betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)),
    }


def sample(eps_fn: Callable, mel, hop_length: int, betas: np.ndarray,
           noise: Optional[Callable[[int, int, int, int], np.ndarray]] = None,
           start_sample: int = 0, conditioning: Optional[np.ndarray] = None, std=None):
    """The paper's sampler: y_N ~ N(0, I), then N refinement steps. Returns audio [batch, frames * hop].

    eps_fn(y, mel, model_input) predicts the noise. `noise(step, batch, start, length)` supplies
    y_N (step N) and z (steps N-1..1); it defaults to fresh random noise. `start_sample` offsets
    positional noise for chunked synthesis. `conditioning` overrides what the model sees per step
    (discrete models see n / T instead of the noise level). `std` [batch, frames * hop] scales every
    noise draw (PriorGrad's prior, from `prior_std`); the update is otherwise the same.
    """
    mel = tf.convert_to_tensor(mel, tf.float32)
    # Static sizes when known (eager), else symbolic: the same loop is traced, unrolled, for export.
    batch = mel.shape[0] if mel.shape[0] is not None else tf.shape(mel)[0]
    length = mel.shape[1] * hop_length if mel.shape[1] is not None else tf.shape(mel)[1] * hop_length
    noise = noise or PositionalNoise()
    c = sampler_coefficients(np.asarray(betas, np.float64))
    cond = c["noise_level"] if conditioning is None else conditioning
    steps = len(betas)

    def draw(step):
        z = tf.convert_to_tensor(noise(step, batch, start_sample, length), tf.float32)
        return z if std is None else z * std

    y = draw(steps)
    for n in reversed(range(steps)):
        level = tf.fill([batch], np.float32(cond[n]))
        eps = eps_fn(y, mel, level)
        y = (y - np.float32(c["eps_scale"][n]) * eps) * np.float32(c["inv_sqrt_alpha"][n])
        if n > 0:
            y = y + np.float32(c["sigma"][n]) * draw(n)
    return y
