"""Objective quality metrics for vocoded speech: small functions of (audio, reference) in NumPy.

Intrusive metrics compare a clip with the recording its mel came from; a vocoder's output is
time-aligned with its mel, so both are trimmed to the shorter length and compared frame by frame
(no alignment search). PESQ, STOI and DNSMOS are defined at 16 kHz: their inputs are resampled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from typing import Callable, Optional

import librosa
import numpy as np

from wavegrad_tf import mel
from wavegrad_tf.spectral import STFT_RESOLUTIONS, TINY
from wavegrad_tf.config import AudioConfig

EVAL_RATE = 16000


def with_white_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """`audio` plus white Gaussian noise at `snr_db` below its mean power: the metrics' known cases."""
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return audio + noise * np.sqrt(np.mean(audio ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))


def _aligned(audio: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both clipped to [-1, 1] (what a wav file can hold) and trimmed to the shorter one."""
    n = min(len(audio), len(reference))
    return np.clip(np.asarray(audio[:n], np.float32), -1, 1), np.clip(np.asarray(reference[:n], np.float32), -1, 1)


def _magnitude(audio: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    return np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop, win_length=win, window="hann"))


def multi_resolution_stft_distance(audio: np.ndarray, reference: np.ndarray,
                                   resolutions=STFT_RESOLUTIONS) -> float:
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions (Parallel WaveGAN's loss)."""
    audio, reference = _aligned(audio, reference)
    total = 0.0
    for n_fft, hop, win in resolutions:
        a, r = _magnitude(audio, n_fft, hop, win), _magnitude(reference, n_fft, hop, win)
        convergence = np.linalg.norm(r - a) / max(np.linalg.norm(r), 1e-9)
        total += convergence + np.mean(np.abs(np.log(np.maximum(r, TINY)) - np.log(np.maximum(a, TINY))))
    return float(total / len(resolutions))


def _power_floor(reference_power: np.ndarray) -> float:
    """80 dB below the reference's peak: digital silence in a recording would otherwise dominate a log
    distance with differences no listener hears."""
    return max(float(reference_power.max()) * 1e-8, 1e-20)


def log_spectral_distance(audio: np.ndarray, reference: np.ndarray, n_fft: int = 2048) -> float:
    """dB: per frame, the RMS over frequency of the difference of 10 log10 power; mean over frames."""
    audio, reference = _aligned(audio, reference)
    a, r = (_magnitude(x, n_fft, n_fft // 4, n_fft) ** 2 for x in (audio, reference))
    floor = _power_floor(r)
    diff = 10 * np.log10(np.maximum(r, floor)) - 10 * np.log10(np.maximum(a, floor))
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=0))))


def mel_cepstrum(mel_power: np.ndarray, floor: float, n_coefficients: int = 24) -> np.ndarray:
    """[frames, n_coefficients] mel-cepstra c1..cD of a mel power spectrogram [bands, frames]: the
    orthonormal DCT of the ln mel amplitude; c0 (loudness) is left out, as MCD usually does."""
    log_amplitude = 0.5 * np.log(np.maximum(mel_power, floor))
    return librosa.feature.mfcc(S=log_amplitude, n_mfcc=n_coefficients + 1, norm="ortho")[1:].T


def mel_cepstral_distortion(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """dB, Kubichek's (10 / ln 10) sqrt(2 sum_d (c_d - c'_d)^2) averaged over time-aligned frames of 24
    mel-cepstra (80 bands, 1024-point FFT, hop 256)."""
    audio, reference = _aligned(audio, reference)
    a, r = (librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=1024, hop_length=256, n_mels=80)
            for x in (audio, reference))
    floor = _power_floor(r)
    diff = mel_cepstrum(a, floor) - mel_cepstrum(r, floor)
    return float(10 / np.log(10) * np.mean(np.sqrt(2 * np.sum(diff ** 2, axis=1))))


def to_eval_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if sample_rate == EVAL_RATE:
        return audio
    return librosa.resample(audio, orig_sr=sample_rate, target_sr=EVAL_RATE, res_type="soxr_hq")


def pesq_wideband(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """ITU-T P.862.2 wideband MOS-LQO, 1.04 (bad) .. 4.64 (identical)."""
    from pesq import pesq

    audio, reference = _aligned(to_eval_rate(audio, sample_rate), to_eval_rate(reference, sample_rate))
    return float(pesq(EVAL_RATE, reference, audio, "wb"))


def stoi(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """Short-time objective intelligibility, 0 .. 1 (Taal et al. 2011)."""
    from pystoi import stoi as _stoi

    audio, reference = _aligned(to_eval_rate(audio, sample_rate), to_eval_rate(reference, sample_rate))
    return float(_stoi(reference, audio, EVAL_RATE, extended=False))


def dnsmos(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Non-intrusive DNSMOS P.835 (signal, background, overall) and P.808, 1 .. 5, from the ONNX models in
    the `speechmos` wheel; clips shorter than 9 s are repeated to 9 s by the package."""
    audio = np.clip(to_eval_rate(audio, sample_rate), -1, 1)
    key = hashlib.sha1(audio.tobytes()).hexdigest()
    if key not in _dnsmos_cache:
        from speechmos import dnsmos as _dnsmos

        scores = _dnsmos.run(audio, EVAL_RATE)
        _dnsmos_cache.clear()  # one clip at a time: its four scores are read one after another
        _dnsmos_cache[key] = {name: float(scores[f"{name}_mos"]) for name in ("ovrl", "sig", "bak", "p808")}
    return _dnsmos_cache[key]


_dnsmos_cache: dict[str, dict[str, float]] = {}


@dataclasses.dataclass(frozen=True)
class Metric:
    """One reported number: how to compute it, which way is better, and what it needs."""

    label: str
    better: str  # "lower" or "higher"
    intrusive: bool  # needs the original recording
    packages: tuple[str, ...]  # import names beyond the base install
    compute: Callable[[np.ndarray, Optional[np.ndarray], AudioConfig], float]


def _dnsmos_part(key: str) -> Callable:
    return lambda audio, reference, cfg: dnsmos(audio, cfg.sample_rate)[key]


_DNSMOS_PACKAGES = ("speechmos", "onnxruntime", "requests")  # speechmos imports requests, declares neither
METRICS: dict[str, Metric] = {
    "log_mel_l1": Metric("log-mel L1", "lower", True, (), lambda a, r, cfg: mel.log_mel_l1(a, r, cfg, use_tf=False)),
    "mr_stft": Metric("multi-resolution STFT", "lower", True, (),
                      lambda a, r, cfg: multi_resolution_stft_distance(a, r)),
    "lsd_db": Metric("log-spectral distance (dB)", "lower", True, (), lambda a, r, cfg: log_spectral_distance(a, r)),
    "mcd_db": Metric("mel-cepstral distortion (dB)", "lower", True, (),
                     lambda a, r, cfg: mel_cepstral_distortion(a, r, cfg.sample_rate)),
    "pesq_wb": Metric("PESQ wideband", "higher", True, ("pesq",),
                      lambda a, r, cfg: pesq_wideband(a, r, cfg.sample_rate)),
    "stoi": Metric("STOI", "higher", True, ("pystoi",), lambda a, r, cfg: stoi(a, r, cfg.sample_rate)),
    # DNSMOS SIG is left out: it does not always rank added noise (benchmarks/metric_cases.py).
    **{f"dnsmos_{key}": Metric(f"DNSMOS {label}", "higher", False, _DNSMOS_PACKAGES, _dnsmos_part(key))
       for key, label in (("ovrl", "overall"), ("bak", "background"), ("p808", "P.808"))},
}


def missing_packages(name: str) -> list[str]:
    """The packages a metric needs that cannot be imported here."""
    return [p for p in METRICS[name].packages if importlib.util.find_spec(p) is None]
