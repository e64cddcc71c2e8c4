"""The log-mel front end and its inverse: small pure functions, each with a TensorFlow and a NumPy twin.

`use_tf=True` (the default) builds TensorFlow ops (training, export graphs); `use_tf=False` computes the
same values with NumPy (the LiteRT runner and the serving client, which run without TensorFlow).
`tests/test_mel.py` checks that the twins agree, and that both match librosa.

Frames follow librosa's centred convention: frame t is centred on sample t * hop, the signal is
reflect-padded by win_length / 2, and a clip of L samples has L // hop + 1 frames. The filterbank is
the Slaney mel (librosa's default, what Tacotron 2 and most TTS front ends use), built once in NumPy, so
runtimes need neither TensorFlow nor librosa (whose numba import alone costs 140 MB of RSS). Features
are (ln(max(mel, log_floor)) - mel_offset) / mel_scale.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the spectral ops take any object with the audio fields
    from wavegrad_tf.config import AudioConfig


def _tf():
    # TensorFlow only where a TF twin runs: the NumPy twins serve runtimes without it.
    import tensorflow as tf

    return tf


# Each traced graph's matrices, by name: one copy per graph however many products use it.
_GRAPH_MATRICES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def matrix(name: str, array: np.ndarray, like):
    """A constant matrix of a TensorFlow twin's matrix product. In a traced graph (an export) it is made once per
    graph, and as `array` times a one computed from `like` (a tensor of the graph), not as a constant: TFLite's
    dynamic-range quantization makes the constant operand of every matrix product int8, and int8 transforms and
    filterbanks wreck the spectral projections (the pretrained model's dynamic_int8 audio: relative L2 4.1 against
    float32). The one is min(|first element| + 1, 1), from ops XNNPACK runs and the converter cannot fold."""
    tf = _tf()
    if tf.executing_eagerly():
        return tf.constant(array)
    graph, key = tf.compat.v1.get_default_graph(), (name, array.shape)
    matrices = _GRAPH_MATRICES.setdefault(graph, {})
    if key not in matrices:
        like = tf.convert_to_tensor(like, tf.float32)
        rank = like.shape.rank  # sliced, then reshaped: a rank-1 SLICE is not an op XNNPACK runs
        first = tf.reshape(tf.slice(like, [0] * rank, [1] * rank), [1])
        matrices[key] = tf.constant(array) * tf.minimum(tf.abs(first) + 1.0, 1.0)
    return matrices[key]


# Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (27 mels per factor 6.4) above.
_LINEAR_HZ_PER_MEL, _BREAK_HZ, _LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27


def hz_to_mel(hz):
    hz = np.asarray(hz, np.float64)
    log_part = _BREAK_HZ / _LINEAR_HZ_PER_MEL + np.log(np.maximum(hz, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(hz < _BREAK_HZ, hz / _LINEAR_HZ_PER_MEL, log_part)


def mel_to_hz(mels):
    mels = np.asarray(mels, np.float64)
    break_mel = _BREAK_HZ / _LINEAR_HZ_PER_MEL
    return np.where(mels < break_mel, mels * _LINEAR_HZ_PER_MEL,
                    _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(mels, break_mel) - break_mel)))


@functools.lru_cache(maxsize=8)
def mel_filterbank(audio_cfg: AudioConfig) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] Slaney-scale triangles, each normalised to unit area (librosa's default)."""
    edges = mel_to_hz(np.linspace(hz_to_mel(audio_cfg.fmin), hz_to_mel(audio_cfg.fmax), audio_cfg.n_mels + 2))
    bins = np.linspace(0, audio_cfg.sample_rate / 2, audio_cfg.n_fft // 2 + 1)
    rising = (bins[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / np.diff(edges)[1:, None]
    triangles = np.maximum(0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return triangles.T.astype(np.float32)


def _hann(length: int) -> np.ndarray:
    """The periodic Hann window (tf.signal.hann_window's default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)).astype(np.float32)


def mel_spectrogram(audio, audio_cfg: AudioConfig, center: bool = True, use_tf: bool = True):
    """Linear mel magnitude (power `audio_cfg.power`): [..., samples] -> [..., frames, n_mels].

    center=False skips the reflect padding: a window of L samples gives 1 + (L - win) // hop frames,
    which lets a piece of a longer signal carry its own context and match the whole signal's frames.
    """
    pad = audio_cfg.win_length // 2
    if use_tf:
        tf = _tf()
        audio = tf.convert_to_tensor(audio, tf.float32)
        if center:
            audio = tf.pad(audio, [[0, 0]] * (audio.shape.rank - 1) + [[pad, pad]], mode="REFLECT")
        # tf.signal zero-pads each win_length frame to n_fft at the end; the magnitude equals librosa's
        # centred padding because a shift inside the FFT frame only changes the phase.
        spec = tf.abs(tf.signal.stft(audio, frame_length=audio_cfg.win_length, frame_step=audio_cfg.hop_length,
                                     fft_length=audio_cfg.n_fft, window_fn=tf.signal.hann_window, pad_end=False))
        if audio_cfg.power != 1.0:
            spec = tf.pow(spec, audio_cfg.power)
        return tf.tensordot(spec, tf.constant(mel_filterbank(audio_cfg)), axes=1)
    audio = np.asarray(audio, np.float32)
    if center:
        audio = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(pad, pad)], mode="reflect")
    count = 1 + (audio.shape[-1] - audio_cfg.win_length) // audio_cfg.hop_length
    index = np.arange(audio_cfg.win_length)[None, :] + audio_cfg.hop_length * np.arange(max(count, 0))[:, None]
    spec = np.abs(np.fft.rfft(audio[..., index] * _hann(audio_cfg.win_length), n=audio_cfg.n_fft)).astype(np.float32)
    if audio_cfg.power != 1.0:
        spec = spec ** audio_cfg.power
    return spec @ mel_filterbank(audio_cfg)


def log_mel(linear, audio_cfg: AudioConfig, use_tf: bool = True):
    """Features of a linear mel: (ln(max(mel, log_floor)) - mel_offset) / mel_scale."""
    if use_tf:
        tf = _tf()
        return (tf.math.log(tf.maximum(linear, audio_cfg.log_floor)) - audio_cfg.mel_offset) / audio_cfg.mel_scale
    return ((np.log(np.maximum(linear, audio_cfg.log_floor)) - audio_cfg.mel_offset) / audio_cfg.mel_scale).astype(np.float32)


def linear_mel(features, audio_cfg: AudioConfig, use_tf: bool = True):
    """The inverse of `log_mel` (exact above the floor)."""
    if use_tf:
        tf = _tf()
        return tf.exp(tf.convert_to_tensor(features, tf.float32) * audio_cfg.mel_scale + audio_cfg.mel_offset)
    return np.exp(np.asarray(features, np.float64) * audio_cfg.mel_scale + audio_cfg.mel_offset)


@functools.lru_cache(maxsize=8)
def _filterbank_pseudo_inverse(audio_cfg: AudioConfig) -> np.ndarray:
    return np.linalg.pinv(mel_filterbank(audio_cfg).astype(np.float64)).astype(np.float32)  # [n_mels, bins]


def magnitude_from_mel(features, audio_cfg: AudioConfig, use_tf: bool = True):
    """The STFT magnitude [..., frames, n_fft // 2 + 1] a log-mel implies: the filterbank's pseudo-inverse
    applied to the linear mel (GLA-Grad's magnitude target, SpecGrad's spectral envelope), clipped at zero,
    and the power's root taken. Smooth across each band: a mel keeps no harmonic detail to recover."""
    pinv = _filterbank_pseudo_inverse(audio_cfg)
    if use_tf:
        tf = _tf()
        spec = tf.maximum(tf.matmul(linear_mel(features, audio_cfg), matrix("mel pinv", pinv, features)), 0.0)
        return spec if audio_cfg.power == 1.0 else tf.pow(spec, 1.0 / audio_cfg.power)
    spec = np.maximum(linear_mel(features, audio_cfg, use_tf=False).astype(np.float32) @ pinv, 0.0)
    return spec if audio_cfg.power == 1.0 else spec ** (1.0 / audio_cfg.power)


def log_mel_spectrogram(audio, audio_cfg: AudioConfig, center: bool = True, use_tf: bool = True):
    """The model's conditioning features: [..., samples] -> [..., frames, n_mels]."""
    return log_mel(mel_spectrogram(audio, audio_cfg, center, use_tf), audio_cfg, use_tf)


def frame_energy(features, audio_cfg: AudioConfig, use_tf: bool = True):
    """sqrt(sum over bins of the linear mel): [..., frames, n_mels] -> [..., frames] (PriorGrad's frame energy)."""
    if use_tf:
        tf = _tf()
        return tf.sqrt(tf.reduce_sum(linear_mel(features, audio_cfg), axis=-1))
    return np.sqrt(np.sum(linear_mel(features, audio_cfg, use_tf=False), axis=-1))


def log_mel_l1(audio, reference, audio_cfg: AudioConfig, use_tf: bool = True):
    """Mean absolute difference of the features of two waveforms ([..., samples]), both clipped to [-1, 1]
    (what a wav file holds) and trimmed to the shorter: the distance the model is conditioned on."""
    n = min(audio.shape[-1], reference.shape[-1])
    if use_tf:
        tf = _tf()
        a, r = (tf.clip_by_value(tf.convert_to_tensor(x, tf.float32)[..., :n], -1.0, 1.0) for x in (audio, reference))
        return tf.reduce_mean(tf.abs(log_mel_spectrogram(a, audio_cfg) - log_mel_spectrogram(r, audio_cfg)))
    a, r = (np.clip(np.asarray(x, np.float32)[..., :n], -1, 1) for x in (audio, reference))
    return float(np.mean(np.abs(log_mel_spectrogram(a, audio_cfg, use_tf=False) - log_mel_spectrogram(r, audio_cfg, use_tf=False))))


def silence(audio_cfg: AudioConfig) -> float:
    """The feature value of digital silence (every bin at the log floor)."""
    return float((np.log(audio_cfg.log_floor) - audio_cfg.mel_offset) / audio_cfg.mel_scale)


# Feature values a mel of real speech can take, with room for a TTS model's over- and undershoot.
PLAUSIBLE_MARGIN_NATS = 3.0


@functools.lru_cache(maxsize=8)
def plausible_range(audio_cfg: AudioConfig) -> tuple[float, float]:
    """(lowest, highest) feature value a mel can plausibly hold: the log floor, and the largest mel bin of
    a full-scale signal (|x| <= 1 bounds each STFT magnitude by the window's sum), each widened by
    PLAUSIBLE_MARGIN_NATS. Outside it a mel is not one of these features (another scaling, or garbage)."""
    peak = float(np.max(mel_filterbank(audio_cfg).sum(axis=0))) * float(_hann(audio_cfg.win_length).sum()) ** audio_cfg.power
    low, high = np.log(audio_cfg.log_floor) - PLAUSIBLE_MARGIN_NATS, np.log(peak) + PLAUSIBLE_MARGIN_NATS
    return float((low - audio_cfg.mel_offset) / audio_cfg.mel_scale), float((high - audio_cfg.mel_offset) / audio_cfg.mel_scale)


def num_frames(num_samples: int, audio_cfg: AudioConfig) -> int:
    return num_samples // audio_cfg.hop_length + 1
