"""The STFT pair and the sampler's projections: TensorFlow twin against NumPy twin and against librosa, on real
speech; each projection brings a signal closer to the mel it is projected onto, never further."""

import librosa
import numpy as np
import pytest
import tensorflow as tf

from wavegrad_tf import mel as mel_lib, spectral
from wavegrad_tf.config import ConfigError, load_config


@pytest.fixture(scope="module")
def cfg():
    return load_config("demo").audio


@pytest.fixture(scope="module")
def clip(speech):
    return speech[8000:8000 + 12000]  # 0.75 s of speech, 60 hops


def librosa_stft(audio, a):
    return librosa.stft(audio, n_fft=a.n_fft, hop_length=a.hop_length, win_length=a.win_length, window="hann",
                        center=True, pad_mode="reflect").T  # [frames, bins]


def librosa_phase(a):
    """librosa centres the window in the FFT frame, ours starts it there: the spectra differ by this per-bin phase."""
    return np.exp(2j * np.pi * np.arange(a.n_fft // 2 + 1) * ((a.n_fft - a.win_length) // 2) / a.n_fft)


def librosa_istft(spectrum, a, length):
    return librosa.istft(spectrum.T, hop_length=a.hop_length, win_length=a.win_length, n_fft=a.n_fft, window="hann",
                         center=True, length=length)


def test_stft_twins_match_librosa_and_invert(cfg, clip):
    real, imag = spectral.stft(clip[None], cfg)
    np_real, np_imag = spectral.stft(clip, cfg, use_tf=False)
    reference = librosa_stft(clip, cfg) * librosa_phase(cfg)
    scale = np.abs(reference).max()
    for r, i in ((real.numpy()[0], imag.numpy()[0]), (np_real, np_imag)):
        assert r.shape == reference.shape == (len(clip) // cfg.hop_length + 1, cfg.n_fft // 2 + 1)
        assert np.abs(r + 1j * i - reference).max() <= 1e-5 * scale
    for audio in (spectral.istft(real, imag, cfg).numpy()[0], spectral.istft(np_real, np_imag, cfg, use_tf=False)):
        assert audio.shape == clip.shape and np.abs(audio - clip).max() <= 1e-5  # exact at the edges too
    # Any spectrum, consistent or not, is inverted as librosa inverts it.
    rng = np.random.default_rng(0)
    noise_real, noise_imag = (rng.standard_normal(reference.shape).astype(np.float32) for _ in range(2))
    expected = librosa_istft((noise_real + 1j * noise_imag) / librosa_phase(cfg), cfg, len(clip))
    assert np.abs(spectral.istft(noise_real, noise_imag, cfg).numpy() - expected).max() <= 1e-4 * np.abs(expected).max()


def test_a_window_that_is_not_a_whole_number_of_hops_is_refused():
    with pytest.raises(ConfigError, match=r"audio.win_length: diffusion.consistency works in the STFT, which needs a "
                                          r"multiple of hop_length \(200\), got 700"):
        load_config("demo", ["audio.win_length=700", "diffusion.consistency=mel"])


def test_magnitude_from_mel_twins_agree_and_recover_the_band_energies(cfg, clip):
    features = mel_lib.log_mel_spectrogram(clip, cfg, use_tf=False)
    magnitude = mel_lib.magnitude_from_mel(features, cfg, use_tf=False)
    np.testing.assert_allclose(mel_lib.magnitude_from_mel(tf.constant(features), cfg).numpy(), magnitude,
                               rtol=1e-4, atol=1e-5 * magnitude.max())
    assert magnitude.min() >= 0 and magnitude.shape == (len(features), cfg.n_fft // 2 + 1)
    # The pseudo-inverse's magnitude, put back through the filterbank, holds the mel's energies (clipping at zero
    # costs a little in the quiet bands).
    rebuilt = mel_lib.log_mel(magnitude @ mel_lib.mel_filterbank(cfg), cfg, use_tf=False)
    assert np.median(np.abs(rebuilt - features)) < 0.1


def test_griffin_lim_matches_a_numpy_transcription(cfg, clip):
    """Two iterations with momentum, from the signal's own phase, against the same recursion on librosa's STFT."""
    rng = np.random.default_rng(1)
    target = np.abs(librosa_stft(clip, cfg)).astype(np.float32)
    start = (clip + 0.05 * rng.standard_normal(len(clip))).astype(np.float32)  # another signal's phase
    momentum, n = 0.99, len(clip)
    spectrum, previous = librosa_stft(start, cfg), 0
    for _ in range(2):
        rebuilt = librosa_stft(librosa_istft(target * spectrum / np.maximum(np.abs(spectrum), 1e-7), cfg, n), cfg)
        spectrum, previous = rebuilt - momentum / (1 + momentum) * previous, rebuilt
    expected = librosa_istft(target * spectrum / np.maximum(np.abs(spectrum), 1e-7), cfg, n)
    for got in (spectral.griffin_lim(start[None], target[None], cfg, 2, momentum).numpy()[0],
                spectral.griffin_lim(start, target, cfg, 2, momentum, use_tf=False)):
        assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-4


def inconsistency(audio, magnitude, a):
    """How far a signal's STFT magnitude is from the magnitude it is projected onto (Griffin-Lim's objective)."""
    return float(np.linalg.norm(np.abs(librosa_stft(audio, a)) - magnitude))


@pytest.mark.parametrize("kind", ["gla", "mel"])
def test_projections_never_move_real_speech_away_from_its_mel(cfg, clip, kind):
    """Speech with the smeared, noisy highs of a young vocoder (here: the clip plus noise shaped like its own
    spectrum) is projected onto its clean mel: after 1, 2, 4 and 8 iterations the distance the projection
    minimises (GLA: the STFT magnitude's to the mel's pseudo-inverse; mel: the log-mel's) is never above the
    one before, and ends well below the start."""
    rng = np.random.default_rng(2)
    degraded = (clip + 0.3 * np.std(clip) * rng.standard_normal(len(clip))).astype(np.float32)
    features = mel_lib.log_mel_spectrogram(clip, cfg, use_tf=False)
    target = mel_lib.magnitude_from_mel(np.concatenate([features, features[-1:]])[:len(clip) // cfg.hop_length + 1],
                                        cfg, use_tf=False)
    if kind == "gla":
        def distance(x):
            return inconsistency(x, target, cfg)

        def project(k):
            return spectral.griffin_lim(degraded[None], target[None], cfg, k).numpy()[0]
    else:
        def distance(x):
            return mel_lib.log_mel_l1(x, clip, cfg, use_tf=False)

        def project(k):
            return spectral.mel_consistency(degraded[None], features[None, :-1], cfg, k).numpy()[0]
    distances = [distance(degraded)] + [distance(project(k)) for k in (1, 2, 4, 8)]
    assert all(b <= a * 1.001 for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] < 0.6 * distances[0], distances


def test_mel_consistency_twins_agree(cfg, clip):
    rng = np.random.default_rng(3)
    degraded = (clip + 0.01 * rng.standard_normal(len(clip))).astype(np.float32)
    features = mel_lib.log_mel_spectrogram(clip, cfg, use_tf=False)[:-1]
    tf_out = spectral.mel_consistency(degraded[None], features[None], cfg, 3).numpy()[0]
    np_out = spectral.mel_consistency(degraded, features, cfg, 3, use_tf=False)
    assert np.linalg.norm(tf_out - np_out) / np.linalg.norm(np_out) <= 1e-4
