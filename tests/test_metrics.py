import numpy as np
import pytest

from wavegrad_tf import metrics


# What identical audio must score: distances are exactly 0; PESQ wideband tops out at 4.64.
IDENTICAL = {"log_mel_l1": 0.0, "mr_stft": 0.0, "lsd_db": 0.0, "mcd_db": 0.0, "pesq_wb": 4.64, "stoi": 1.0}


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_metric_ranks_clean_above_20db_above_5db_noise(name, speech, tiny_cfg):
    metric = metrics.METRICS[name]
    clean = speech[:48000]
    scores = [metric.compute(audio, clean, tiny_cfg.audio) for audio in
              (clean, metrics.with_white_noise(clean, 20), metrics.with_white_noise(clean, 5))]
    sign = 1 if metric.better == "lower" else -1
    assert sign * scores[0] < sign * scores[1] < sign * scores[2], scores
    if name in IDENTICAL:
        assert scores[0] == pytest.approx(IDENTICAL[name], abs=0.01)


def test_intrusive_metrics_trim_to_the_shorter_clip(speech, tiny_cfg):
    # A vocoder's output may be a few samples longer than the recording (whole frames): the extra is ignored.
    clean = speech[:32000]
    padded = np.concatenate([clean, np.full(300, 0.5, np.float32)])
    assert metrics.multi_resolution_stft_distance(padded, clean) == 0.0
    assert metrics.log_spectral_distance(padded, clean) == 0.0


def test_log_spectral_distance_of_a_uniform_gain_is_the_gain_in_db(speech):
    # Noise 20 dB down keeps nearly every bin above the metric's floor (80 dB under the peak).
    clean = metrics.with_white_noise(speech[:32000], 20) * 0.5
    assert metrics.log_spectral_distance(clean * 10 ** (-6 / 20), clean) == pytest.approx(6.0, abs=0.01)


def test_mel_cepstral_distortion_ignores_loudness(speech):
    # c0 (loudness) is left out, so a gain that keeps the spectrum's shape (and above the floor) costs nothing.
    clean = metrics.with_white_noise(speech[:32000], 20) * 0.5
    assert metrics.mel_cepstral_distortion(clean * 0.5, clean, 16000) == pytest.approx(0.0, abs=1e-3)


def test_metrics_resample_to_16k(speech):
    clean = speech[:32000]
    upsampled = metrics.librosa.resample(clean, orig_sr=16000, target_sr=24000)
    assert metrics.stoi(upsampled, upsampled, 24000) == pytest.approx(1.0, abs=1e-6)
    assert metrics.pesq_wideband(upsampled, upsampled, 24000) > 4.5


def test_missing_package_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pesq" else real(name, *a))
    assert metrics.missing_packages("pesq_wb") == ["pesq"]
    assert metrics.missing_packages("log_mel_l1") == []
