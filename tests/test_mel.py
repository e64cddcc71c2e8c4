import subprocess
import sys

import librosa
import numpy as np
import pytest

from wavegrad_tf import mel
from wavegrad_tf.config import load_config


def librosa_log_mel(audio, a):
    """The reference: librosa's Slaney mel of the magnitude STFT, centred with reflect padding."""
    m = librosa.feature.melspectrogram(y=audio, sr=a.sample_rate, n_fft=a.n_fft, hop_length=a.hop_length,
                                       win_length=a.win_length, window="hann", center=True, pad_mode="reflect",
                                       power=a.power, n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax)
    return (np.log(np.maximum(m, a.log_floor)).T - a.mel_offset) / a.mel_scale


@pytest.mark.parametrize("use_tf", [True, False])
@pytest.mark.parametrize("preset", ["base", "ljspeech", "demo"])
def test_both_twins_match_librosa_on_real_speech(speech, preset, use_tf):
    """Tolerance: max |difference| of the log-mel <= 1e-3 nats wherever the reference is above the floor."""
    a = load_config(preset).audio
    audio = librosa.resample(speech, orig_sr=16000, target_sr=a.sample_rate)
    ours = np.asarray(mel.log_mel_spectrogram(audio, a, use_tf=use_tf))
    ref = librosa_log_mel(audio, a)
    assert ours.shape == ref.shape == (mel.num_frames(len(audio), a), a.n_mels)
    live = ref > np.log(a.log_floor) + 1.0
    assert live.mean() > 0.5
    assert np.max(np.abs(ours - ref)[live]) <= 1e-3


@pytest.mark.parametrize("center", [True, False])
def test_tensorflow_and_numpy_twins_agree(speech, center):
    """Every function of the module, both ways, on a batch of real speech: within 1e-4 (float32 FFTs)."""
    a = load_config("demo", ["audio.mel_offset=-5", "audio.mel_scale=2.5", "audio.power=2"]).audio
    batch = np.stack([speech[:16000], speech[8000:24000]])
    pairs = {
        "log_mel_spectrogram": lambda tf: mel.log_mel_spectrogram(batch, a, center, use_tf=tf),
        "linear_mel": lambda tf: np.log(mel.linear_mel(mel.log_mel_spectrogram(batch, a, center, use_tf=False), a,
                                                       use_tf=tf)),
        "frame_energy": lambda tf: mel.frame_energy(mel.log_mel_spectrogram(batch, a, center, use_tf=False), a,
                                                    use_tf=tf),
        "log_mel_l1": lambda tf: mel.log_mel_l1(batch[:1], batch[1:], a, use_tf=tf),
    }
    for name, fn in pairs.items():
        np.testing.assert_allclose(np.asarray(fn(True)), np.asarray(fn(False)), atol=1e-4, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("preset", ["demo", "base", "ljspeech"])
def test_numpy_filterbank_is_librosas_slaney_not_htk(preset):
    a = load_config(preset).audio
    np.testing.assert_allclose(mel.mel_filterbank(a), librosa.filters.mel(
        sr=a.sample_rate, n_fft=a.n_fft, n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax).T, rtol=1e-6, atol=1e-8)
    assert not np.allclose(mel.mel_filterbank(a), librosa.filters.mel(
        sr=a.sample_rate, n_fft=a.n_fft, n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax, htk=True).T, atol=1e-4)


def test_runtime_imports_neither_librosa_nor_tensorflow():
    """The LiteRT runner's process stays small: librosa's numba import alone is 140 MB of RSS."""
    script = ("import sys, numpy as np; from wavegrad_tf.runtime import check_mel; "
              "from wavegrad_tf.vocoders import litert; from wavegrad_tf.config import load_config; "
              "check_mel(np.full((3, 64), -5, np.float32), load_config('demo').audio); "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'librosa', 'numba', 'tensorflow', 'keras'}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_crop_with_context_equals_full_clip_frames(speech):
    """Training crops computed from their own context window give the same frames as the whole clip."""
    from wavegrad_tf import data

    cfg = load_config("demo")
    a, seg = cfg.audio, cfg.train.segment_length
    full = mel.log_mel_spectrogram(speech, a).numpy()
    padded = np.pad(speech, a.win_length // 2, mode="reflect")
    start = 7
    window = padded[start * a.hop_length:start * a.hop_length + seg + a.win_length]
    audio, crop = data.crop_features(window, cfg)
    np.testing.assert_allclose(crop.numpy(), full[start:start + seg // a.hop_length], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(audio), speech[start * a.hop_length:start * a.hop_length + seg])


def test_log_floor_normalisation_and_inverse(speech):
    cfg = load_config("demo", ["audio.log_floor=0.01", "audio.mel_offset=-2.0", "audio.mel_scale=4.0"])
    silence = mel.log_mel_spectrogram(np.zeros(4000, np.float32), cfg.audio, use_tf=False)
    np.testing.assert_allclose(silence, (np.log(0.01) + 2.0) / 4.0, rtol=1e-6)
    assert mel.silence(cfg.audio) == pytest.approx((np.log(0.01) + 2.0) / 4.0)
    linear = mel.mel_spectrogram(speech[:8000], cfg.audio, use_tf=False)
    back = mel.linear_mel(mel.log_mel(linear, cfg.audio, use_tf=False), cfg.audio, use_tf=False)
    above = linear > 0.01
    np.testing.assert_allclose(back[above], linear[above], rtol=1e-5)


def test_plausible_range_holds_real_and_full_scale_audio_and_not_other_scalings(speech):
    a = load_config("demo").audio
    low, high = mel.plausible_range(a)
    square = np.sign(np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype(np.float32)  # full scale
    for audio in (speech, square, np.zeros(4000, np.float32)):
        m = mel.log_mel_spectrogram(audio, a, use_tf=False)
        assert low < m.min() and m.max() < high
    m = mel.log_mel_spectrogram(speech, a, use_tf=False)
    assert (20 * m / np.log(10)).min() < low  # the same mel in dB is out of range
