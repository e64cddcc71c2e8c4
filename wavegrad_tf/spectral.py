"""The STFT the model's features are computed with, its inverse, and what the sampler builds on them: the
mel-consistency projection, Griffin-Lim's projection (GLA-Grad) and SpecGrad's noise-shaping filter.

Each function has a TensorFlow and a NumPy twin (`use_tf=`), as in `wavegrad_tf.mel`. The TensorFlow twin
writes the DFT as matrix products over frames cut by reshapes, and keeps the real and imaginary parts as
two float tensors: every op is one XNNPACK runs, so the same code serves the Keras sampler, the SavedModel
and the static-shape TFLite graphs (TFLite has no builtin inverse FFT). The NumPy twin uses np.fft.

Frames follow the features' convention: frame t is centred on sample t * hop (reflect padding of
win_length / 2), a periodic Hann window of win_length, zero-padded to n_fft. A spectrum is a pair
(real, imag) of [..., frames, n_fft // 2 + 1]. The window must span a whole number of hops (every preset's
is 4).
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING

import numpy as np

from wavegrad_tf import mel as mel_lib

if TYPE_CHECKING:  # annotations only
    from wavegrad_tf.config import AudioConfig

# Below this STFT magnitude (or mel value) a bin counts as empty: divisions are floored there.
TINY = 1e-7
# The multi-resolution STFT distance's (`metrics`, and InferGrad's loss in `losses`): Parallel WaveGAN's three
# resolutions (n_fft, hop, window) at 24 kHz (Yamamoto et al. 2020, eq. 3-5).
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def _tf():
    import tensorflow as tf

    return tf


def check(audio_cfg: AudioConfig, use: str = "the STFT projection") -> None:
    """The framing below needs the window to span a whole number of hops (`AudioConfig.check_stft`)."""
    audio_cfg.check_stft(use)


@functools.lru_cache(maxsize=8)
def _bases(audio_cfg: AudioConfig) -> dict[str, np.ndarray]:
    """Analysis [win, bins] and synthesis [bins, win] DFT matrices (cos and sin parts), the Hann window folded
    into both (the synthesis sum is divided by the window's squared overlap, as librosa's istft does)."""
    check(audio_cfg)
    n_fft, win = audio_cfg.n_fft, audio_cfg.win_length
    window = mel_lib._hann(win).astype(np.float64)
    k, n = np.arange(n_fft // 2 + 1)[:, None], np.arange(win)[None, :]
    angle = 2 * np.pi * k * n / n_fft
    # one-sided inverse: bins 0 and n_fft / 2 once, the others twice (their mirror images)
    weight = np.where((k == 0) | (k == n_fft // 2), 1.0, 2.0) / n_fft
    return {"cos": (np.cos(angle) * window).T.astype(np.float32), "sin": (-np.sin(angle) * window).T.astype(np.float32),
            "icos": (np.cos(angle) * weight * window).astype(np.float32),
            "isin": (-np.sin(angle) * weight * window).astype(np.float32), "window": window}


def stft(audio, audio_cfg: AudioConfig, use_tf: bool = True):
    """(real, imag) [..., samples // hop + 1, bins] of audio [..., samples], samples a multiple of hop."""
    pad, hop, ratio = audio_cfg.win_length // 2, audio_cfg.hop_length, audio_cfg.win_length // audio_cfg.hop_length
    bases = _bases(audio_cfg)
    if use_tf:
        tf = _tf()
        padded = _reflect_pad(tf.convert_to_tensor(audio, tf.float32), pad)
        blocks = tf.reshape(padded, tf.concat([tf.shape(padded)[:-1], [-1, hop]], 0))
        count = tf.shape(blocks)[-2] - ratio + 1
        frames = tf.concat([blocks[..., j:j + count, :] for j in range(ratio)], axis=-1)
        return (tf.matmul(frames, mel_lib.matrix("dft cos", bases["cos"], audio)),
                tf.matmul(frames, mel_lib.matrix("dft sin", bases["sin"], audio)))
    audio = np.asarray(audio, np.float32)
    padded = _reflect_pad_np(audio, pad)
    count = 1 + (padded.shape[-1] - audio_cfg.win_length) // hop
    index = np.arange(audio_cfg.win_length)[None, :] + hop * np.arange(count)[:, None]
    spectrum = np.fft.rfft(padded[..., index] * bases["window"], n=audio_cfg.n_fft)
    return spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32)


def istft(real, imag, audio_cfg: AudioConfig, use_tf: bool = True):
    """The inverse of `stft`: audio [..., (frames - 1) * hop] (windowed overlap-add over the window's squared
    overlap, which is exact at the edges too)."""
    pad, hop, ratio = audio_cfg.win_length // 2, audio_cfg.hop_length, audio_cfg.win_length // audio_cfg.hop_length
    bases = _bases(audio_cfg)
    if use_tf:
        tf = _tf()
        frames = (tf.matmul(real, mel_lib.matrix("idft cos", bases["icos"], real))
                  + tf.matmul(imag, mel_lib.matrix("idft sin", bases["isin"], real)))  # [..., F, win], windowed
        count = tf.shape(frames)[-2]
        squares = tf.ones_like(frames[..., :1, :1]) * tf.ones([count, 1]) * (bases["window"] ** 2).astype(np.float32)
        audio, overlap = (_overlap_add(x, hop, ratio) for x in (frames, squares))
        return (audio / tf.maximum(overlap, TINY))[..., pad:pad + (count - 1) * hop]
    spectrum = np.asarray(real, np.float64) + 1j * np.asarray(imag, np.float64)
    frames = np.fft.irfft(spectrum, n=audio_cfg.n_fft)[..., :audio_cfg.win_length] * bases["window"]
    count = frames.shape[-2]
    audio = np.zeros(frames.shape[:-2] + ((count - 1) * hop + audio_cfg.win_length,))
    overlap = np.zeros((count - 1) * hop + audio_cfg.win_length)
    for t in range(count):
        audio[..., t * hop:t * hop + audio_cfg.win_length] += frames[..., t, :]
        overlap[t * hop:t * hop + audio_cfg.win_length] += bases["window"] ** 2
    return (audio / np.maximum(overlap, TINY))[..., pad:pad + (count - 1) * hop].astype(np.float32)


def _reflect_pad(audio, pad: int):
    """tf.pad(mode="REFLECT") on the last axis, written as two matrix products with an exchange matrix on a
    [rows, samples] view: TFLite's MIRROR_PAD is not an op XNNPACK runs (nor are slices that add or drop axes).
    A signal of at most `pad` samples (a mel of one or two frames) has no reflection that long: it is reflected as
    if it went on in silence (`_reflect_pad_np`). Static shapes longer than that keep the graph of two slices."""
    tf = _tf()
    shape = tf.shape(audio)
    rows, length = tf.reshape(audio, [-1, shape[-1]]), shape[-1]
    exchange = mel_lib.matrix(f"exchange {pad}", np.eye(pad, dtype=np.float32)[::-1], audio)
    if audio.shape[-1] is not None and audio.shape[-1] > pad:
        left, right = rows[:, 1:pad + 1], rows[:, length - pad - 1:length - 1]
    else:
        zeros = tf.zeros_like(rows[:, :1]) * tf.zeros([pad])
        left = tf.concat([rows, zeros], axis=-1)[:, 1:pad + 1]
        right = tf.concat([zeros, rows], axis=-1)[:, length - 1:length - 1 + pad]
    left, right = tf.matmul(left, exchange), tf.matmul(right, exchange)
    return tf.reshape(tf.concat([left, rows, right], axis=-1), tf.concat([shape[:-1], [-1]], 0))


def _reflect_pad_np(audio: np.ndarray, pad: int) -> np.ndarray:
    """np.pad(mode="reflect") on the last axis; a signal of at most `pad` samples reflected as if it went on in
    silence (NumPy's own reflect would fold it back and forth)."""
    if audio.shape[-1] > pad:
        return np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(pad, pad)], mode="reflect")
    zeros = np.zeros(audio.shape[:-1] + (pad,), audio.dtype)
    left = np.concatenate([audio, zeros], axis=-1)[..., 1:pad + 1][..., ::-1]
    right = np.concatenate([zeros, audio], axis=-1)[..., audio.shape[-1] - 1:audio.shape[-1] - 1 + pad][..., ::-1]
    return np.concatenate([left, audio, right], axis=-1)


def _overlap_add(frames, hop: int, ratio: int):
    """[..., F, ratio * hop] -> [..., (F + ratio - 1) * hop]: frame t's j-th hop-long block lands on block t + j."""
    tf = _tf()
    rank = frames.shape.rank
    blocks = [tf.pad(frames[..., j * hop:(j + 1) * hop], [[0, 0]] * (rank - 2) + [[j, ratio - 1 - j], [0, 0]])
              for j in range(ratio)]
    summed = functools.reduce(operator.add, blocks)  # a chain of ADDs: XNNPACK runs ADD, not ADD_N
    return tf.reshape(summed, tf.concat([tf.shape(summed)[:-2], [-1]], 0))


def magnitude(real, imag, use_tf: bool = True):
    if use_tf:
        tf = _tf()
        return tf.sqrt(tf.square(real) + tf.square(imag) + TINY ** 2)
    return np.sqrt(np.square(real) + np.square(imag) + TINY ** 2)


@functools.lru_cache(maxsize=8)
def _bin_weights(audio_cfg: AudioConfig) -> np.ndarray:
    """[n_mels, bins]: each bin's share of every mel band it lies in (a bin's weights sum to 1; bins no band
    covers have none)."""
    fb = mel_lib.mel_filterbank(audio_cfg).astype(np.float64)  # [bins, mels]
    return (fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)).T.astype(np.float32)


# The limiter's ceiling: a peak the output may reach (-0.45 dBFS), below full scale so a 16-bit file never clips.
CEILING = 0.95


def limit(audio, hop: int, ceiling: float = CEILING, use_tf: bool = True):
    """Audio [..., blocks * hop] with its peaks brought down to `ceiling` by its gain, not its shape: each hop-long
    block's gain is min(1, ceiling / its peak); at each boundary between blocks the gain is the lower of the two,
    and it goes linearly from one boundary to the next. So every sample's gain is at most its own block's (no
    sample passes the ceiling), the gain never jumps (no click), and audio under the ceiling is left as it was.
    A hard clip would instead square off every peak (harmonics the recording did not have)."""
    ramp = (np.arange(hop, dtype=np.float32) + 0.5) / hop
    if use_tf:
        tf, shape = _tf(), _tf().shape(audio)
        blocks = tf.reshape(tf.abs(audio), tf.concat([[-1], [shape[-1] // hop, hop, 1]], 0))
        # MAX_POOL_2D, which XNNPACK runs (a reduction over the block would not be)
        peak = tf.reshape(tf.nn.max_pool2d(blocks, [1, hop], [1, hop], "VALID"), tf.concat([shape[:-1], [-1]], 0))
        ops, concat, reshape = tf, tf.concat, tf.reshape
    else:
        audio = np.asarray(audio, np.float32)
        shape = audio.shape
        peak = np.abs(audio).reshape(shape[:-1] + (-1, hop)).max(axis=-1)
        ops, concat, reshape = np, np.concatenate, np.reshape
    gain = ops.minimum(ceiling / ops.maximum(peak, TINY), 1.0)
    edges = concat([gain[..., :1], ops.minimum(gain[..., :-1], gain[..., 1:]), gain[..., -1:]], axis=-1)
    return audio * reshape(edges[..., :-1, None] * (1.0 - ramp) + edges[..., 1:, None] * ramp, shape)


def mel_consistency(audio, log_mel, audio_cfg: AudioConfig, iterations: int = 3, use_tf: bool = True):
    """Projects audio [..., frames * hop] towards the signals whose mel is `log_mel` [..., frames, n_mels] and that
    a file can hold: each iteration scales every STFT bin by the ratio of the target mel to the audio's own, in
    the bands the bin lies in, resynthesises, and limits its peaks to the ceiling (`limit`). Phase and the harmonic
    structure within a band are the audio's; band energies (and so pauses, and the level of each band) become the
    mel's. The limiter makes the two constraints alternate: on loud, limited speech the model's phase has a higher
    crest factor than the recording's, and band energies alone put 13 % of the samples past full scale. (A hard
    clip there, as before, left 0.3 to 1 % of the samples of loud speech at full scale.)"""
    target = mel_lib.linear_mel(log_mel, audio_cfg, use_tf=use_tf)
    fb, weights = mel_lib.mel_filterbank(audio_cfg), _bin_weights(audio_cfg)
    if use_tf:
        fb, weights = mel_lib.matrix("filterbank", fb, log_mel), mel_lib.matrix("bin weights", weights, log_mel)
    if audio_cfg.power != 1.0:  # a power mel's bands hold |X|^p: the bins take the ratio's p-th root
        target = target ** (1.0 / audio_cfg.power)
    ops = _tf() if use_tf else np
    for _ in range(iterations):
        real, imag = stft(audio, audio_cfg, use_tf)
        mag = magnitude(real, imag, use_tf)
        est = ops.matmul(mag ** audio_cfg.power, fb) ** (1.0 / audio_cfg.power) if audio_cfg.power != 1.0 else ops.matmul(mag, fb)
        frames = _frames_like(target, est, use_tf)
        gain = ops.matmul(frames / ops.maximum(est, TINY), weights)
        audio = limit(istft(real * gain, imag * gain, audio_cfg, use_tf), audio_cfg.hop_length, use_tf=use_tf)
    return audio


def _frames_like(mel, spectrum_frames, use_tf: bool):
    """`mel` [..., T, n] with its last frame repeated to the spectrum's T + 1 frames (the audio of T frames of
    mel spans T * hop samples, whose STFT has one more frame, centred on the end)."""
    if use_tf:
        tf = _tf()
        return tf.concat([mel, mel[..., -1:, :]], axis=-2)[..., :tf.shape(spectrum_frames)[-2], :]
    return np.concatenate([mel, mel[..., -1:, :]], axis=-2)[..., :spectrum_frames.shape[-2], :]


def griffin_lim(audio, target, audio_cfg: AudioConfig, iterations: int = 32, momentum: float = 0.99, use_tf: bool = True):
    """Fast Griffin-Lim (Perraudin et al. 2013) from audio's own phase: alternates the projection onto
    spectra of magnitude `target` [..., frames + 1, bins] and onto consistent spectra (STFT of an iSTFT),
    with momentum; returns the audio of the last consistent estimate."""
    real, imag = stft(audio, audio_cfg, use_tf)
    prev_real, prev_imag = real * 0, imag * 0
    for _ in range(iterations):
        mag = magnitude(real, imag, use_tf)
        rebuilt = stft(istft(target * real / mag, target * imag / mag, audio_cfg, use_tf), audio_cfg, use_tf)
        real, imag = (r - momentum / (1 + momentum) * p for r, p in zip(rebuilt, (prev_real, prev_imag)))
        prev_real, prev_imag = rebuilt
    mag = magnitude(real, imag, use_tf)
    return istft(target * real / mag, target * imag / mag, audio_cfg, use_tf)


@functools.lru_cache(maxsize=8)
def _cepstrum_bases(n_fft: int, lifter: int) -> dict[str, np.ndarray]:
    """[bins, lifter]: the first `lifter` real-cepstrum coefficients of a one-sided log spectrum; and
    [lifter, bins] x 2: the minimum-phase spectrum's log (real and imaginary parts) from those coefficients
    (the cepstrum folded onto positive quefrencies: c0 once, the others twice)."""
    k, q = np.arange(n_fft // 2 + 1)[:, None], np.arange(lifter)[None, :]
    angle = 2 * np.pi * k * q / n_fft
    to_cepstrum = np.where((k == 0) | (k == n_fft // 2), 1.0, 2.0) * np.cos(angle) / n_fft
    fold = np.where(q == 0, 1.0, 2.0)
    return {"cepstrum": to_cepstrum.astype(np.float32), "log_real": (fold * np.cos(angle)).T.astype(np.float32),
            "log_imag": (-fold * np.sin(angle)).T.astype(np.float32)}


def envelope_filter(log_mel, audio_cfg: AudioConfig, lifter: int = 24, floor: float = 1e-2, use_tf: bool = True):
    """SpecGrad's time-varying filter (Koizumi et al. 2022, sec. 3): the spectral envelope of each mel frame,
    as a minimum-phase response (real, imag) [..., frames, bins]. The envelope is the magnitude the mel implies
    (`mel.magnitude_from_mel`, floored at `floor` times the frame's RMS so the filter stays invertible), smoothed
    by keeping its first `lifter` cepstral coefficients; the phase is the minimum phase of that envelope."""
    if lifter > audio_cfg.n_fft // 2:
        raise ValueError(f"lifter {lifter}: expected at most n_fft / 2 = {audio_cfg.n_fft // 2}")
    bases = _cepstrum_bases(audio_cfg.n_fft, lifter)
    amplitude = mel_lib.magnitude_from_mel(log_mel, audio_cfg, use_tf)
    if use_tf:
        tf = _tf()
        rms = tf.sqrt(tf.reduce_mean(tf.square(amplitude), axis=-1, keepdims=True))
        cepstrum = tf.matmul(tf.math.log(tf.maximum(amplitude, tf.maximum(floor * rms, TINY))),
                             mel_lib.matrix("cepstrum", bases["cepstrum"], log_mel))
        log_gain = tf.matmul(cepstrum, mel_lib.matrix("log gain", bases["log_real"], log_mel))
        phase = tf.matmul(cepstrum, mel_lib.matrix("log phase", bases["log_imag"], log_mel))
        gain = tf.exp(log_gain)
        return gain * tf.cos(phase), gain * tf.sin(phase)
    rms = np.sqrt(np.mean(np.square(amplitude), axis=-1, keepdims=True))
    log_amplitude = np.log(np.maximum(amplitude, np.maximum(floor * rms, TINY)))
    # The NumPy twin takes the long way, as the paper writes it: the full real cepstrum by an inverse FFT,
    # liftered and folded, back by an FFT.
    cepstrum = np.fft.irfft(log_amplitude, n=audio_cfg.n_fft)
    folded = np.zeros_like(cepstrum)
    folded[..., 0] = cepstrum[..., 0]
    folded[..., 1:lifter] = 2 * cepstrum[..., 1:lifter]
    response = np.exp(np.fft.rfft(folded, n=audio_cfg.n_fft))
    return response.real.astype(np.float32), response.imag.astype(np.float32)
