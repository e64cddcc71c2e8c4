import numpy as np
import pytest
import tensorflow as tf

from wavegrad_tf import data, diffusion, priors, schedules
from wavegrad_tf.config import Consistency, load_config
from wavegrad_tf.runtime import PositionalNoise


def test_preset_schedules():
    lin = schedules.get_schedule("linear-1000")
    assert len(lin) == 1000 and lin[0] == 1e-6 and lin[-1] == 0.01
    assert len(schedules.get_schedule("linear-50")) == 50
    fib = schedules.get_schedule("fibonacci-25")
    assert len(fib) == 25 and fib[0] == 1e-6 and fib[1] == 2e-6
    np.testing.assert_allclose(fib[2:], fib[1:-1] + fib[:-2])
    assert len(schedules.get_schedule("manual-6")) == 6


def test_user_schedules_from_list_and_files(tmp_path):
    betas = [1e-4, 1e-3, 1e-2, 0.05]
    np.savetxt(tmp_path / "s.txt", betas)
    np.save(tmp_path / "s.npy", betas)
    (tmp_path / "s.yaml").write_text("betas: [0.0001, 0.001, 0.01, 0.05]\n")
    for spec in (betas, tmp_path / "s.txt", str(tmp_path / "s.npy"), tmp_path / "s.yaml"):
        np.testing.assert_allclose(schedules.get_schedule(spec), betas)
    for bad, msg in (([0.1, 1.5], r"in \(0, 1\)"), ([], "non-empty"), ("nope", "expected one of"),
                     ([0.01, 0.5, 0.1], "non-decreasing betas .* 0.5 at step 2 then 0.1")):
        with pytest.raises(ValueError, match=msg):
            schedules.get_schedule(bad)


def test_noise_levels_and_noising_follow_the_paper():
    betas = np.linspace(1e-6, 0.01, 1000)
    levels = schedules.noise_levels(betas)
    expected = [1.0]
    for b in betas:
        expected.append(expected[-1] * np.sqrt(1 - b))
    np.testing.assert_allclose(levels, expected, rtol=1e-9)
    rng = np.random.default_rng(0)
    y0, eps = rng.standard_normal((2, 100)).astype("float32"), rng.standard_normal((2, 100)).astype("float32")
    a = np.array([0.3, 0.95], "float32")
    got = data.add_noise(tf.constant(y0), tf.constant(eps), tf.constant(a)).numpy()
    np.testing.assert_allclose(got, a[:, None] * y0 + np.sqrt(1 - a[:, None] ** 2) * eps, rtol=1e-5)


def test_continuous_levels_lie_in_their_segment_and_discrete_on_the_grid():
    levels = schedules.noise_levels(schedules.get_schedule("linear-50"))
    level, cond = data.draw_noise_level(tf.constant([1, 2]), 4096, levels, continuous=True)
    level = level.numpy()
    np.testing.assert_array_equal(level, cond.numpy())
    assert levels[-1] <= level.min() and level.max() <= 1.0
    # Uniform within segments: roughly equal counts per segment, and values fill (not sit on) the grid.
    seg = np.searchsorted(-levels, -level)
    assert np.bincount(seg, minlength=51)[1:].min() > 40
    on_grid = np.min(np.abs(level[:, None] - levels[None, :]), 1) < 1e-7
    assert on_grid.mean() < 0.01
    level, cond = data.draw_noise_level(tf.constant([3, 4]), 512, levels, continuous=False)
    n = np.round(cond.numpy() * 50).astype(int)
    assert n.min() >= 1 and n.max() <= 50
    np.testing.assert_allclose(level.numpy(), levels[n], rtol=1e-6)


def numpy_sampler(eps_fn, mel, hop, betas, noises, std=1.0):
    """A line-by-line NumPy transcription of the paper's Algorithm 2; noises[n] is the noise drawn at step n.
    PriorGrad (Lee et al. 2022, Alg. 2) draws every noise from N(0, Sigma): `std` times a standard normal. The
    output is then limited under full scale (`spectral.limit`'s NumPy twin), as the sampler's is."""
    from wavegrad_tf import spectral

    alphas = 1 - betas
    alpha_bar = np.cumprod(alphas)
    y = std * noises[len(betas)]
    for n in range(len(betas), 0, -1):
        i = n - 1
        level = np.sqrt(alpha_bar[i])
        y = (y - betas[i] / np.sqrt(1 - alpha_bar[i]) * eps_fn(y, mel, level)) / np.sqrt(alphas[i])
        if n > 1:
            sigma = np.sqrt((1 - alpha_bar[i - 1]) / (1 - alpha_bar[i]) * betas[i])
            y = y + sigma * std * noises[n - 1]
    return spectral.limit(y, hop, use_tf=False).astype(np.float64)


def eps_np(y, m, level):
    """A stand-in network, the same in NumPy and TensorFlow: nonlinear in y, and using the mel and the level."""
    return np.tanh(y) * 0.5 * level + np.repeat(m.mean(-1), y.shape[1] // m.shape[1], axis=1) / 10


def eps_tf(y, m, level):
    return tf.tanh(y) * 0.5 * level[:, None] + tf.repeat(tf.reduce_mean(m, -1), y.shape[1] // m.shape[1], axis=1) / 10


@pytest.mark.parametrize("schedule", ["manual-6", "fibonacci-25"])
def test_sampler_matches_numpy_transcription(schedule):
    cfg = load_config("demo", ["diffusion.prior=standard"])
    betas, hop = schedules.get_schedule(schedule), cfg.audio.hop_length
    mel = np.random.default_rng(1).uniform(-8, -2, (2, 5, cfg.audio.n_mels)).astype("float32")
    noise = PositionalNoise(seed=3)
    noises = {n: noise(n, 2, 0, 5 * hop).astype(np.float64) for n in range(len(betas) + 1)}
    expected = numpy_sampler(eps_np, mel.astype(np.float64), hop, betas, noises)
    got = diffusion.Sampler(eps_tf, cfg, betas, Consistency())(mel, noise).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_positional_noise_is_the_same_in_any_window():
    noise = PositionalNoise(seed=11)
    whole = noise(3, 2, 0, 30000)
    np.testing.assert_array_equal(noise(3, 2, 12345, 9000), whole[:, 12345:21345])
    assert not np.allclose(noise(2, 2, 0, 100), whole[:, :100])
    assert not np.allclose(whole[0], whole[1]) and not np.allclose(PositionalNoise(12)(3, 2, 0, 100), whole[:, :100])
    assert abs(whole.std() - 1) < 0.02 and abs(whole.mean()) < 0.02
    # Gaussian tails, not a uniform's or a clipped one's: P(|z| > 3) = 0.0027
    assert 0.0015 < np.mean(np.abs(whole) > 3) < 0.0040


@pytest.mark.parametrize("counter, key, expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
])
def test_philox_gives_the_published_known_answers(counter, key, expected):
    """Random123's kat_vectors for Philox4x32-10: the generator web/noise.js reimplements bit for bit."""
    from wavegrad_tf.runtime.noise import philox4x32

    assert tuple(int(x) for x in philox4x32(np.array([counter], np.uint64), key)[0]) == expected


def test_priorgrad_prior_and_sampler_match_a_numpy_transcription():
    """Sigma's diagonal: each frame's energy sqrt(sum of its linear mel) over the training maximum, clipped to
    [std_min, 1], held over the frame's hop samples; the sampler is Algorithm 2 with every noise drawn from
    N(0, Sigma)."""
    cfg = load_config("demo", ["diffusion.prior=priorgrad", "diffusion.prior_energy_max=3.0",
                               "diffusion.prior_std_min=0.1"])
    hop, rng = cfg.audio.hop_length, np.random.default_rng(4)
    mel = rng.uniform(-11.5, 0.5, (2, 6, cfg.audio.n_mels)).astype("float32")
    mel[0, 2] = -11.5  # a silent frame: at the floor
    energy = np.sqrt(np.exp(mel.astype(np.float64)).sum(-1))
    expected_std = np.repeat(np.clip(energy / 3.0, 0.1, 1.0), hop, axis=1)
    std = priors.PriorGrad(cfg).condition(mel).numpy()
    np.testing.assert_allclose(std, expected_std, rtol=1e-5)
    assert std[0, 2 * hop] == pytest.approx(0.1) and std.max() <= 1.0 and len(np.unique(std.round(6))) > 4

    betas = schedules.get_schedule("manual-6")
    noise = PositionalNoise(seed=5)
    noises = {n: noise(n, 2, 0, 6 * hop).astype(np.float64) for n in range(len(betas) + 1)}
    expected = numpy_sampler(eps_np, mel.astype(np.float64), hop, betas, noises, expected_std)
    got = diffusion.Sampler(eps_tf, cfg, betas, Consistency())(mel, noise).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    standard = diffusion.Sampler(eps_tf, load_config("demo", ["diffusion.prior=standard"]), betas, Consistency())(mel, noise).numpy()
    assert np.abs(got - standard).max() > 0.1  # the prior changes the output


def test_schedule_for_picks_presets_files_and_refuses_mixes(tmp_path):
    cfg = load_config("demo")
    np.testing.assert_array_equal(schedules.schedule_for(cfg), schedules.get_schedule(cfg.diffusion.inference_schedule))
    np.testing.assert_array_equal(schedules.schedule_for(cfg, iterations=25), schedules.get_schedule("fibonacci-25"))
    with pytest.raises(schedules.ScheduleError, match="no preset has that many steps"):
        schedules.schedule_for(cfg, iterations=7)
    with pytest.raises(schedules.ScheduleError, match="not both"):
        schedules.schedule_for(cfg, iterations=6, schedule="manual-6")


def test_the_divergence_guard_bounds_every_iterate():
    """A network that feeds its output back ever larger (eps = -10 y) sends the unguarded update to inf and NaN
    within six steps; guarded, every iterate stays within ITERATE_BOUND and the audio is finite."""
    cfg = load_config("demo", ["diffusion.prior=standard", "diffusion.consistency=none"])
    betas = schedules.get_schedule("manual-6")
    mel = np.full((1, 4, cfg.audio.n_mels), -5.0, np.float32)
    seen = []

    def diverging(y, m, level):
        seen.append(float(tf.reduce_max(tf.abs(y))))
        return -1e6 * y

    audio = diffusion.Sampler(diverging, cfg, betas, Consistency())(mel, PositionalNoise(0)).numpy()
    assert np.isfinite(audio).all() and np.abs(audio).max() <= diffusion.ITERATE_BOUND
    assert max(seen) == pytest.approx(diffusion.ITERATE_BOUND)  # it was needed: the iterates hit the bound
    unguarded = np.float64(1.0)
    for n in reversed(range(len(betas))):  # the same recursion on one sample without the bound
        c = schedules.sampler_coefficients(betas)
        unguarded = (unguarded + c["eps_scale"][n] * 1e6 * unguarded) * c["inv_sqrt_alpha"][n]
    assert abs(unguarded) > 1e20


def full_scale_share(audio) -> float:
    """The share of samples a 16-bit file holds at full scale (what a writer's clip leaves of anything past it)."""
    return float(np.mean(np.abs(np.clip(audio, -1, 1) * 32767).round() >= 32767))


def test_mel_consistency_keeps_loud_speech_under_full_scale_without_clipping(speech):
    """Loud, limited speech (tanh(8 x / peak), peaks at -3 dBFS): band energies alone put 13 % of the pretrained
    model's samples past 1.0, and the hard clip the projection once alternated with left 0.3 to 1 % of a loud clip's
    samples at full scale. The limiter it now alternates with leaves none there: the output's peak is under the
    ceiling, within 3 dB of the recording's, and its mel near the recording's."""
    from wavegrad_tf import mel as mel_lib, spectral

    cfg = load_config("demo").audio
    loud = (0.7 * np.tanh(8 * speech[:16000] / np.abs(speech).max())).astype(np.float32)
    features = mel_lib.log_mel_spectrogram(loud, cfg, use_tf=False)[:-1]
    rng = np.random.default_rng(0)
    start = (loud[::-1] * 0.3 + 0.1 * rng.standard_normal(len(loud))).astype(np.float32)  # another phase
    out = spectral.mel_consistency(start[None], features[None], cfg, 8).numpy()[0]
    assert full_scale_share(out) == 0.0 and np.abs(out).max() <= spectral.CEILING + 1e-6
    assert np.abs(out).max() <= np.abs(loud).max() * 10 ** (3 / 20)
    assert mel_lib.log_mel_l1(out, loud, cfg, use_tf=False) < 0.5


def test_the_limiter_lowers_peaks_by_gain_not_by_shape():
    """spectral.limit: twins equal; audio under the ceiling untouched; every sample of loud audio under it; the
    gain continuous (a step would click); and a sine twice the ceiling comes out a sine (its harmonics 60 dB below
    the fundamental) where a hard clip at the ceiling puts its third harmonic 12 dB below it."""
    from wavegrad_tf import spectral

    rng = np.random.default_rng(0)
    quiet = (0.3 * rng.uniform(-1, 1, (2, 4000))).astype(np.float32)
    np.testing.assert_array_equal(spectral.limit(quiet, 200, use_tf=False), quiet)
    loud = (rng.standard_normal((2, 4000)) * np.linspace(0.1, 2, 4000)).astype(np.float32)
    limited = spectral.limit(loud, 200).numpy()
    np.testing.assert_allclose(limited, spectral.limit(loud, 200, use_tf=False), atol=1e-6)
    assert np.abs(limited).max() <= spectral.CEILING + 1e-6 and full_scale_share(limited) == 0
    gain = spectral.limit(np.ones((1, 4000), np.float32) * loud[:1], 200, use_tf=False)[0] / loud[0]
    assert np.abs(np.diff(gain[np.abs(loud[0]) > 1e-3])).max() < 0.05
    t = np.arange(16000) / 16000
    sine = (2 * spectral.CEILING * np.sin(2 * np.pi * 250 * t)).astype(np.float32)

    def third_harmonic_db(x):
        spectrum = np.abs(np.fft.rfft(x[4000:12000] * np.hanning(8000)))
        return 20 * np.log10(spectrum[750 // 2] / spectrum[250 // 2])  # 2 Hz bins: 250 Hz and 750 Hz

    assert third_harmonic_db(spectral.limit(sine[None], 200, use_tf=False)[0]) < -60
    assert third_harmonic_db(np.clip(sine, -spectral.CEILING, spectral.CEILING)) > -15
