"""WaveGrad's sampler in TensorFlow (Chen et al. 2020, Alg. 2) with its consistency options. The forward process
(noising a training crop, Alg. 1) is in `wavegrad_tf.data`, the schedules in `wavegrad_tf.schedules`, the noise's
distribution in `wavegrad_tf.priors`."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from wavegrad_tf import mel as mel_lib, priors, schedules, spectral
from wavegrad_tf.config import Consistency
from wavegrad_tf.runtime.noise import PositionalNoise
from wavegrad_tf.runtime.vocoder import ITERATE_BOUND
from wavegrad_tf.schedules import sampler_coefficients


class Sampler:
    """The paper's sampler (Alg. 2) for one network, schedule, prior and consistency option: y_N drawn from the
    prior, then N refinement steps. The Keras vocoder, the SavedModel and TFLite graphs and the schedule search
    all sample with this class.

    eps_fn(y, mel, model_input) predicts the noise; the model sees the noise level (continuous models) or n / T.
    Calling it with mel [batch, frames, n_mels] returns audio [batch, frames * hop]. `noise(step, batch, start,
    length)` supplies the white noise of y_N (step N) and of each z (steps N-1..1); it defaults to positional
    noise. `start_sample` offsets it for chunked synthesis. Static sizes are used where known, so the same loop
    is traced, unrolled, for export.
    """

    def __init__(self, eps_fn: Callable, cfg, betas, consistency: Consistency):
        self.eps_fn, self.cfg = eps_fn, cfg
        self.betas = np.asarray(betas, np.float64)
        self.prior = priors.prior_for(cfg)
        self.consistency = consistency
        self.c = sampler_coefficients(self.betas)
        per_step = schedules.conditioning(self.betas, cfg.diffusion.continuous)
        self.model_input = self.c["noise_level"] if per_step is None else per_step

    def __call__(self, mel, noise: Optional[Callable[[int, int, int, int], np.ndarray]] = None, start_sample: int = 0):
        mel = tf.convert_to_tensor(mel, tf.float32)
        hop, c, steps, kind = self.cfg.audio.hop_length, self.c, len(self.betas), self.consistency.kind
        batch = mel.shape[0] if mel.shape[0] is not None else tf.shape(mel)[0]
        length = mel.shape[1] * hop if mel.shape[1] is not None else tf.shape(mel)[1] * hop
        noise = noise or PositionalNoise()
        state = self.prior.condition(mel)
        per_step = Consistency.KINDS[kind]
        target = mel_lib.magnitude_from_mel(tf.concat([mel, mel[:, -1:]], 1), self.cfg.audio) if per_step.per_step \
            else None

        def draw(step):
            return self.prior.shape(tf.convert_to_tensor(noise(step, batch, start_sample, length), tf.float32), state)

        y, projected = draw(steps), None
        for n in reversed(range(steps)):
            eps = self.eps_fn(y, mel, tf.fill([batch], np.float32(self.model_input[n])))
            if n >= steps - self.consistency.steps:  # GLA-Grad: the clean estimate replaced by its projection
                level, spread = np.float32(c["noise_level"][n]), np.float32(np.sqrt(1 - c["noise_level"][n] ** 2))
                if projected is None or per_step.every_step:
                    projected = spectral.griffin_lim((y - spread * eps) / level, target, self.cfg.audio,
                                                     self.consistency.iterations)
                eps = (y - level * projected) / spread
            y = (y - np.float32(c["eps_scale"][n]) * eps) * np.float32(c["inv_sqrt_alpha"][n])
            if n > 0:
                y = y + np.float32(c["sigma"][n]) * draw(n)
            # The divergence guard: a network off its training distribution can feed its own growing output back
            # to inf and NaN; every iterate stays within a bound real ones never reach.
            y = tf.clip_by_value(y, -ITERATE_BOUND, ITERATE_BOUND)
        if kind == "mel":
            y = spectral.mel_consistency(y, mel, self.cfg.audio, self.consistency.iterations)
        # Whatever made it, the output's peaks are brought under full scale by gain, never by a clip.
        return spectral.limit(y, self.cfg.audio.hop_length)
