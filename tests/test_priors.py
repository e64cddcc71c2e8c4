"""SpecGrad's prior (Koizumi et al. 2022) against a NumPy transcription of the paper on librosa's STFT, on real
speech: the filter, the noise drawn with it, the loss's whitening and the sampler."""

import librosa
import numpy as np
import pytest
import tensorflow as tf

from test_diffusion import eps_np, eps_tf, numpy_sampler
from wavegrad_tf import diffusion, mel as mel_lib, priors, schedules
from wavegrad_tf.config import Consistency, load_config
from wavegrad_tf.runtime import PositionalNoise

ENERGY_MAX, STD_MIN, LIFTER = 4.8, 0.1, 24


@pytest.fixture(scope="module")
def cfg():
    return load_config("demo", ["diffusion.prior=specgrad", f"diffusion.prior_energy_max={ENERGY_MAX}",
                                f"diffusion.prior_std_min={STD_MIN}", f"diffusion.specgrad_lifter={LIFTER}"])


@pytest.fixture(scope="module")
def clip_mel(speech, cfg):
    clip = speech[8000:8000 + 40 * cfg.audio.hop_length]
    return clip, mel_lib.log_mel_spectrogram(clip, cfg.audio, use_tf=False)[:-1]  # 40 frames for 40 hops


def paper_filter(log_mel, a):
    """Sec. 3 of the paper, transcribed: the amplitude spectrogram from the log-mel by the filterbank's
    pseudo-inverse; its real cepstrum; the first r coefficients (the envelope); the minimum-phase response of
    that envelope (the cepstrum folded onto positive quefrencies); scaled, here, to PriorGrad's frame std."""
    filterbank = librosa.filters.mel(sr=a.sample_rate, n_fft=a.n_fft, n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax)
    linear = np.exp(log_mel.astype(np.float64))
    amplitude = np.maximum(linear @ np.linalg.pinv(filterbank).T, 0)
    rms = np.sqrt(np.mean(amplitude ** 2, axis=-1, keepdims=True))
    amplitude = np.maximum(amplitude, np.maximum(1e-2 * rms, 1e-7))
    full = np.concatenate([amplitude, amplitude[..., -2:0:-1]], axis=-1)  # the two-sided spectrum
    cepstrum = np.fft.ifft(np.log(full), axis=-1).real
    window = np.zeros(a.n_fft)
    window[0], window[1:LIFTER] = 1, 2
    response = np.exp(np.fft.fft(cepstrum * window, axis=-1))[..., :a.n_fft // 2 + 1]
    std = np.clip(np.sqrt(linear.sum(-1)) / ENERGY_MAX, STD_MIN, 1)
    filt = response * (std / np.sqrt(np.mean(np.abs(response) ** 2, axis=-1)))[..., None]
    return np.concatenate([filt, filt[..., -1:, :]], axis=-2)  # T frames of mel, T + 1 of the STFT


def librosa_filtered(noise, filt, a, inverse=False):
    spectrum = librosa.stft(noise, n_fft=a.n_fft, hop_length=a.hop_length, win_length=a.win_length, window="hann",
                            pad_mode="reflect")
    spectrum = spectrum / filt.T if inverse else spectrum * filt.T
    return librosa.istft(spectrum, hop_length=a.hop_length, win_length=a.win_length, n_fft=a.n_fft, window="hann",
                         length=len(noise))


def test_filter_matches_the_paper(cfg, clip_mel):
    _, log_mel = clip_mel
    real, imag = priors.SpecGrad(cfg).condition(tf.constant(log_mel[None]))
    got, expected = real.numpy()[0] + 1j * imag.numpy()[0], paper_filter(log_mel, cfg.audio)
    assert got.shape == expected.shape == (41, cfg.audio.n_fft // 2 + 1)
    assert np.max(np.abs(got - expected)) <= 1e-3 * np.max(np.abs(expected))
    # minimum phase: the filter's impulse response is causal (no energy at negative times, the second half)
    impulse = np.fft.irfft(expected, n=cfg.audio.n_fft, axis=-1)
    assert np.sum(impulse[:, cfg.audio.n_fft // 2:] ** 2) < 1e-6 * np.sum(impulse ** 2)


def test_noise_and_whitening_match_the_paper_and_follow_the_envelope(cfg, clip_mel):
    """Noise is L z with L = iSTFT . M . STFT; the loss whitens with L^-1 ~ iSTFT . M^-1 . STFT. The noise has
    the mel's spectral shape: its frames' spectra correlate with the speech's, white noise's do not."""
    clip, log_mel = clip_mel
    prior, a = priors.SpecGrad(cfg), cfg.audio
    state = prior.condition(tf.constant(log_mel[None]))
    white = PositionalNoise(1)(1, 1, 0, len(clip))
    noise = prior.shape(tf.constant(white), state).numpy()[0]
    filt = paper_filter(log_mel, a)
    expected = librosa_filtered(white[0], filt, a)
    assert np.linalg.norm(noise - expected) / np.linalg.norm(expected) <= 1e-4
    whitened = prior.whiten(tf.constant(noise[None]), state).numpy()[0]
    assert np.linalg.norm(whitened - librosa_filtered(noise, filt, a, inverse=True)) / np.linalg.norm(whitened) <= 1e-4

    def band_log_power(x):
        return np.log(librosa.feature.melspectrogram(y=x, sr=a.sample_rate, n_fft=a.n_fft, hop_length=a.hop_length,
                                                     win_length=a.win_length, n_mels=a.n_mels, fmin=a.fmin,
                                                     fmax=a.fmax) + 1e-10)

    speech, shaped, flat = (band_log_power(x) for x in (clip, noise, white[0]))
    loud = np.exp(log_mel).sum(-1) > np.median(np.exp(log_mel).sum(-1))  # voiced, loud frames

    def mean_correlation(x):
        return np.mean([np.corrcoef(x[:, t], speech[:, t])[0, 1] for t in np.where(loud)[0]])

    assert mean_correlation(shaped) > 0.7 and mean_correlation(flat) < 0.3, (mean_correlation(shaped),
                                                                            mean_correlation(flat))
    # Each frame keeps PriorGrad's variance (its std, as PriorGrad draws it), within the STFT's smearing.
    std = priors.PriorGrad(cfg).frame_std(tf.constant(log_mel)).numpy()
    frames = noise.reshape(-1, a.hop_length).std(axis=1)
    inner = slice(4, -4)
    assert np.median(np.abs(np.log(frames[inner] / std[inner]))) < np.log(1.3)


def test_sampler_under_specgrad_matches_the_numpy_sampler(cfg, clip_mel):
    """Algorithm 2 with every noise drawn as L z, z the positional white noise of each step."""
    _, log_mel = clip_mel
    a, hop = cfg.audio, cfg.audio.hop_length
    mel = log_mel[None, :12]
    betas = schedules.get_schedule("manual-6")
    noise = PositionalNoise(seed=5)
    filt = paper_filter(mel[0], a)
    noises = {n: librosa_filtered(noise(n, 1, 0, 12 * hop)[0], filt, a)[None].astype(np.float64)
              for n in range(len(betas) + 1)}
    expected = numpy_sampler(eps_np, mel.astype(np.float64), hop, betas, noises)
    got = diffusion.Sampler(eps_tf, cfg, betas, Consistency())(mel, noise).numpy()
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-4
