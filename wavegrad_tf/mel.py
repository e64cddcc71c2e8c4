"""The one log-mel front end (tf.signal), shared by training, inference and export.

Frames follow librosa's centred convention: frame t is centred on sample t * hop, the signal is
reflect-padded by win_length / 2, and a clip of L samples has L // hop + 1 frames. The filterbank
is librosa's Slaney mel (what Tacotron 2 and most TTS front ends use), built once as a constant.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
import tensorflow as tf

from wavegrad_tf.config import AudioConfig


@functools.lru_cache(maxsize=8)
def mel_filterbank(cfg: AudioConfig) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] Slaney-scale, Slaney-normalised filterbank (librosa's default)."""
    fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                             fmin=cfg.fmin, fmax=cfg.fmax)
    return fb.T.astype(np.float32)


def mel_spectrogram(audio, cfg: AudioConfig, center: bool = True):
    """Linear mel magnitude (power `cfg.power`): [..., samples] -> [..., frames, n_mels].

    center=False skips the reflect padding: a window of L samples gives 1 + (L - win) // hop
    frames, which lets a training crop carry its own context and match the full-clip features.
    """
    audio = tf.convert_to_tensor(audio, tf.float32)
    if center:
        pad = cfg.win_length // 2
        paddings = [[0, 0]] * (audio.shape.rank - 1) + [[pad, pad]]
        audio = tf.pad(audio, paddings, mode="REFLECT")
    # tf.signal zero-pads each win_length frame to n_fft at the end; the magnitude is the same as
    # librosa's centred padding because a shift inside the FFT frame only changes the phase.
    stft = tf.signal.stft(audio, frame_length=cfg.win_length, frame_step=cfg.hop_length,
                          fft_length=cfg.n_fft, window_fn=tf.signal.hann_window, pad_end=False)
    spec = tf.abs(stft)
    if cfg.power != 1.0:
        spec = tf.pow(spec, cfg.power)
    return tf.tensordot(spec, tf.constant(mel_filterbank(cfg)), axes=1)


def log_mel(mel, cfg: AudioConfig):
    """(ln(max(mel, log_floor)) - mel_offset) / mel_scale."""
    return (tf.math.log(tf.maximum(mel, cfg.log_floor)) - cfg.mel_offset) / cfg.mel_scale


def log_mel_spectrogram(audio, cfg: AudioConfig, center: bool = True):
    """The model's conditioning features: [..., samples] -> [..., frames, n_mels]."""
    return log_mel(mel_spectrogram(audio, cfg, center=center), cfg)


def frame_energy(log_mel, cfg: AudioConfig):
    """sqrt(sum over bins of the linear mel): [..., frames, n_mels] -> [..., frames] (PriorGrad's frame energy)."""
    return tf.sqrt(tf.reduce_sum(tf.exp(tf.convert_to_tensor(log_mel, tf.float32) * cfg.mel_scale
                                        + cfg.mel_offset), axis=-1))


def num_frames(num_samples: int, cfg: AudioConfig) -> int:
    return num_samples // cfg.hop_length + 1
