"""WaveGrad diffusion in TensorFlow: forward noising, training noise levels, PriorGrad's prior and the
paper's sampler (Chen et al. 2020, Alg. 1-2). The schedules themselves are in `wavegrad_tf.schedules`."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from wavegrad_tf import mel as mel_lib
from wavegrad_tf.runtime.noise import PositionalNoise
from wavegrad_tf.schedules import sampler_coefficients


def add_noise(audio, noise, noise_level):
    """y_noisy = sqrt(a) * y0 + sqrt(1 - a) * eps, with sqrt(a) = noise_level (per batch item)."""
    level = tf.reshape(tf.cast(noise_level, audio.dtype), [-1, 1])
    return level * audio + tf.sqrt(1.0 - tf.square(level)) * noise


def draw_noise_level(seed, batch_size: int, levels: np.ndarray, continuous: bool):
    """Training noise level and conditioning (what the model sees) for each item: (noise_level, conditioning).

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
    # Held over the hop by a broadcast multiply and a reshape (tf.repeat becomes TFLite's TILE, outside XNNPACK).
    held = std[..., None] * tf.ones([cfg.audio.hop_length])
    return tf.reshape(held, tf.concat([tf.shape(std)[:-1], [-1]], 0))


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
    per_step = c["noise_level"] if conditioning is None else conditioning
    steps = len(betas)

    def draw(step):
        z = tf.convert_to_tensor(noise(step, batch, start_sample, length), tf.float32)
        return z if std is None else z * std

    y = draw(steps)
    for n in reversed(range(steps)):
        eps = eps_fn(y, mel, tf.fill([batch], np.float32(per_step[n])))
        y = (y - np.float32(c["eps_scale"][n]) * eps) * np.float32(c["inv_sqrt_alpha"][n])
        if n > 0:
            y = y + np.float32(c["sigma"][n]) * draw(n)
    return y
