"""The training losses, TensorFlow ops per batch item:

    noise_loss    WaveGrad's (Chen et al. 2020): L1 between the noise and its prediction, whitened by the prior
    output_loss   InferGrad's (Chen et al. 2022): between the few-step sampler's output and the recording, the
                  multi-resolution STFT distance (spectral convergence + log-magnitude L1, Parallel WaveGAN's
                  resolutions) plus a waveform L1

`output_loss`'s STFT distance is `metrics.multi_resolution_stft_distance`'s twin (tests/test_losses.py): the same
windows over the same samples (librosa centres each frame and pads the signal with n_fft / 2 zeros; here the
signal is padded with win / 2 zeros and the frame is not padded, which puts the same samples under the window,
and a DFT's magnitude does not depend on where the zeros of a frame are).
"""

from __future__ import annotations

import tensorflow as tf

from wavegrad_tf.spectral import STFT_RESOLUTIONS, TINY


def noise_loss(noise, pred, prior, log_mel):
    """Element-wise L1 between the noise and its prediction (the paper's loss), the error whitened by the prior
    the noise was drawn from (`Prior.whiten`: PriorGrad divides it by the noise's std)."""
    return tf.abs(prior.whiten(noise - tf.cast(pred, tf.float32), prior.condition(log_mel)))


def _magnitude(audio, n_fft: int, hop: int, win: int):
    padded = tf.pad(audio, [[0, 0], [win // 2, win // 2]])
    return tf.abs(tf.signal.stft(padded, win, hop, n_fft, window_fn=tf.signal.hann_window))


def _resolutions(audio, reference, resolutions):
    for n_fft, hop, win in resolutions:
        yield _magnitude(audio, n_fft, hop, win), _magnitude(reference, n_fft, hop, win)


def spectral_convergence(audio, reference, resolutions=STFT_RESOLUTIONS):
    """[batch]: ||R - A||_F / ||R||_F of the STFT magnitudes, averaged over the resolutions."""
    return sum(tf.norm(r - a, axis=[-2, -1]) / tf.maximum(tf.norm(r, axis=[-2, -1]), 1e-9)
               for a, r in _resolutions(audio, reference, resolutions)) / len(resolutions)


def log_magnitude_distance(audio, reference, resolutions=STFT_RESOLUTIONS):
    """[batch]: mean |ln R - ln A| of the STFT magnitudes (floored at TINY), averaged over the resolutions."""
    return sum(tf.reduce_mean(tf.abs(tf.math.log(tf.maximum(r, TINY)) - tf.math.log(tf.maximum(a, TINY))), [-2, -1])
               for a, r in _resolutions(audio, reference, resolutions)) / len(resolutions)


def stft_distance(audio, reference, resolutions=STFT_RESOLUTIONS):
    """[batch]: spectral convergence + log-magnitude L1 of audio [batch, samples] to reference, averaged over the
    resolutions."""
    return spectral_convergence(audio, reference, resolutions) + log_magnitude_distance(audio, reference, resolutions)


def output_loss(audio, reference, waveform_weight: float = 1.0):
    """[batch]: InferGrad's loss of the sampler's output audio [batch, samples] to the recording."""
    return stft_distance(audio, reference) + waveform_weight * tf.reduce_mean(tf.abs(audio - reference), -1)
