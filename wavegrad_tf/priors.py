"""The diffusion noise's distribution given the mel, one class per choice of `diffusion.prior`:

    standard    N(0, I): the paper's WaveGrad
    priorgrad   N(0, diag(std^2)), std per mel frame from its energy (Lee et al. 2022)
    specgrad    N(0, L L^T), L = iSTFT . M . STFT, M each frame's spectral envelope as a minimum-phase filter at
                PriorGrad's level (Koizumi et al. 2022): PriorGrad's per-frame scale becomes a per-frame shape

A prior says how to draw noise for a mel (`shape` white noise), how to weigh the training loss (`whiten`, its
inverse), and what it measures on the training data and stores in the config (`measured`). `condition` does
the per-mel work once, for every draw of a sampler or a training step. TensorFlow ops throughout: training,
the Keras sampler and both exports run the same code. `tests/test_priors.py` checks them against a NumPy
transcription of the papers.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from wavegrad_tf import mel as mel_lib, spectral
from wavegrad_tf.config import Config
from wavegrad_tf.errors import UserError


class Standard:
    """N(0, I)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def measured(self, energy_max) -> Config:
        """The config with what this prior measures on the training data filled in; `energy_max()` measures
        the largest frame energy of the training clips, called only if needed."""
        return self.cfg

    def condition(self, log_mel):
        """What drawing and whitening need from a mel [..., frames, n_mels], computed once."""
        return None

    def shape(self, white, state):
        """Noise of this prior from white noise [..., frames * hop]."""
        return white

    def whiten(self, residual, state):
        """The inverse of `shape`: the loss is L1 of the whitened residual (for PriorGrad, |error| / std, the L1
        analogue of its Sigma^-1-weighted norm)."""
        return residual


class PriorGrad(Standard):
    """std = clip(frame energy / prior_energy_max, prior_std_min, 1), held over each frame's hop samples; frame
    energy is sqrt(sum of the linear mel) (`mel.frame_energy`)."""

    def measured(self, energy_max) -> Config:
        d = self.cfg.diffusion
        if d.prior_energy_max is not None:
            return self.cfg
        measured = float(energy_max())
        if not math.isfinite(measured) or measured <= 0:
            raise UserError(f"diffusion.prior_energy_max: the training audio's largest frame energy is {measured}; "
                            "expected a positive number (is every file silent?)")
        return dataclasses.replace(self.cfg, diffusion=dataclasses.replace(d, prior_energy_max=measured))

    def frame_std(self, log_mel):
        """[..., frames]: each frame's noise std."""
        d = self.cfg.diffusion
        if d.prior_energy_max is None:
            raise ValueError("diffusion.prior_energy_max: not set (training measures it on its data)")
        return tf.clip_by_value(mel_lib.frame_energy(log_mel, self.cfg.audio) / d.prior_energy_max,
                                d.prior_std_min, 1.0)

    def condition(self, log_mel):
        std = self.frame_std(log_mel)
        # Held over the hop by a broadcast multiply and a reshape (tf.repeat becomes TFLite's TILE, outside XNNPACK).
        held = std[..., None] * tf.ones([self.cfg.audio.hop_length])
        return tf.reshape(held, tf.concat([tf.shape(std)[:-1], [-1]], 0))

    def shape(self, white, state):
        return white * state

    def whiten(self, residual, state):
        return residual / state


class SpecGrad(PriorGrad):
    """Noise filtered in the STFT domain by M = envelope filter x (frame std / the filter's RMS over bins): each
    frame has PriorGrad's variance, spread over frequency like the mel's spectral envelope."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        spectral.check(cfg.audio)

    def condition(self, log_mel):
        real, imag = spectral.envelope_filter(log_mel, self.cfg.audio, self.cfg.diffusion.specgrad_lifter)
        rms = tf.sqrt(tf.reduce_mean(tf.square(real) + tf.square(imag), axis=-1, keepdims=True))
        scale = self.frame_std(log_mel)[..., None] / rms
        # T frames of mel cover T * hop samples, whose STFT has T + 1 frames: the last frame's filter serves twice.
        return tuple(tf.concat([x * scale, x[..., -1:, :] * scale[..., -1:, :]], axis=-2) for x in (real, imag))

    def shape(self, white, state):
        m_real, m_imag = state
        real, imag = spectral.stft(white, self.cfg.audio)
        return spectral.istft(real * m_real - imag * m_imag, real * m_imag + imag * m_real, self.cfg.audio)

    def whiten(self, residual, state):
        m_real, m_imag = state
        power = tf.square(m_real) + tf.square(m_imag)
        real, imag = spectral.stft(residual, self.cfg.audio)
        return spectral.istft((real * m_real + imag * m_imag) / power, (imag * m_real - real * m_imag) / power,
                              self.cfg.audio)


PRIORS = {"standard": Standard, "priorgrad": PriorGrad, "specgrad": SpecGrad}


def prior_for(cfg: Config) -> Standard:
    """The prior `cfg.diffusion.prior` names."""
    return PRIORS[cfg.diffusion.prior](cfg)
