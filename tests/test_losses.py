"""InferGrad's loss (`wavegrad_tf.losses.output_loss`) through the unrolled sampler: its STFT distance against the
metric it twins, its value in a training step against a NumPy transcription (the tiny trained network, the
sampler of Algorithm 2 under PriorGrad's prior, the loss), and its gradient reaching every weight."""

import dataclasses

import librosa
import numpy as np
import pytest
import tensorflow as tf

from conftest import SPEECH
from test_diffusion import numpy_sampler
from wavegrad_tf import data, losses, metrics, priors
from wavegrad_tf.runs import Run
from wavegrad_tf.spectral import STFT_RESOLUTIONS
from wavegrad_tf.trainer import Trainer

SCHEDULES = [[1e-4, 0.05, 0.5], [0.01, 0.6]]  # two lengths: each step unrolls one of them, in turn


def test_the_stft_distance_twins_the_metric(speech):
    """Per item, losses.stft_distance equals metrics.multi_resolution_stft_distance (librosa) on real speech against
    itself degraded three ways."""
    clean = speech[8000:24000]
    rng = np.random.default_rng(0)
    degraded = np.stack([clean * 0.5, metrics.with_white_noise(clean, 10), np.roll(clean, 37) + clean * 0.1,
                         np.zeros_like(clean) + 1e-4 * rng.standard_normal(len(clean))]).astype(np.float32)
    got = losses.stft_distance(tf.constant(degraded), tf.constant(np.stack([clean] * 4))).numpy()
    expected = [metrics.multi_resolution_stft_distance(d, clean) for d in degraded]
    np.testing.assert_allclose(got, expected, rtol=2e-4)
    assert got[0] < got[1] and got[3] > 1.0  # the metric's order: scaled < noisy; near-silence far off


@pytest.fixture(scope="module")
def infer_trainer(tiny_run, tmp_path_factory):
    """A Trainer of the tiny run's config with InferGrad's loss over two schedules, starting from its trained
    averaged weights, and one batch of its data."""
    run = Run.open(tiny_run)
    cfg = dataclasses.replace(run.config, train=dataclasses.replace(
        run.config.train, infer_loss_weight=1.0, infer_schedules=SCHEDULES, infer_items=2,
        infer_waveform_weight=0.5)).validate()
    trainer = Trainer(cfg, tmp_path_factory.mktemp("infer") / "run")
    run.restore_weights(trainer.network)
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path_factory.mktemp("cache")).clips[:4]
    batch = next(iter(data.dataset(clips, cfg, cfg.train.batch_size, seed=0)))
    return trainer, cfg, batch


def numpy_output_loss(network, cfg, betas, batch, items, waveform_weight):
    """The unrolled sampler (Algorithm 2, PriorGrad's std) and InferGrad's loss, transcribed in NumPy; the network
    is the only thing TensorFlow computes."""
    mel = batch["mel"].numpy()[:items].astype(np.float64)
    white = batch["sampler_noise"].numpy()[:items].astype(np.float64)
    std = priors.prior_for(cfg).condition(tf.constant(mel, tf.float32)).numpy().astype(np.float64)

    def eps(y, m, level):
        return network([y.astype(np.float32), m.astype(np.float32), np.full(len(y), level, np.float32)],
                       training=True).numpy().astype(np.float64)

    audio = numpy_sampler(eps, mel, cfg.audio.hop_length, np.asarray(betas, np.float64),
                          {n: white[:, n - 1] for n in range(1, len(betas) + 1)}, std)
    reference = batch["audio"].numpy()[:items].astype(np.float64)
    out = []
    for a, r in zip(audio, reference):
        distance = 0.0
        for n_fft, hop, win in STFT_RESOLUTIONS:
            ma, mr = (np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, window="hann",
                                          pad_mode="constant")) for x in (a, r))
            distance += (np.linalg.norm(mr - ma) / np.linalg.norm(mr)
                         + np.mean(np.abs(np.log(np.maximum(mr, 1e-7)) - np.log(np.maximum(ma, 1e-7)))))
        out.append(distance / len(STFT_RESOLUTIONS) + waveform_weight * np.mean(np.abs(a - r)))
    return np.array(out)


@pytest.mark.parametrize("which", [0, 1])
def test_the_step_s_output_loss_matches_a_numpy_transcription(infer_trainer, which):
    """The output loss a training step computes (each of the two schedules), against the NumPy transcription: the
    tiny trained network, the prior's std, the sampler of Algorithm 2 and the loss, to float32 rounding."""
    trainer, cfg, batch = infer_trainer
    items = cfg.train.infer_items
    white = batch["sampler_noise"][:items]
    audio = trainer.samplers[which](batch["mel"][:items], lambda step, *_: white[:, step - 1])
    got = losses.output_loss(audio, batch["audio"][:items], cfg.train.infer_waveform_weight).numpy()
    expected = numpy_output_loss(trainer.network, cfg, SCHEDULES[which], batch, items, cfg.train.infer_waveform_weight)
    assert len(trainer.samplers[which].betas) == len(SCHEDULES[which])
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert np.all(got > 0.1)  # a tiny network's 3-step sample is far from the recording: the loss has work to do


def test_its_gradient_reaches_every_weight_and_is_the_loss_s_slope(infer_trainer):
    """Through every unrolled step: every trainable weight gets a gradient of the output loss, non-zero in all but a
    few, and along a direction (half the gradient's, half random) the gradient's component equals the slope of the
    loss's smooth part (spectral convergence + waveform L1) by central differences. The log-magnitude term is left
    out of that check only: floored at 1e-7 on near-silent bins, its float32 differences wander (0.009 to -0.006
    from steps of 0.1 to 0.001, where the smooth part's agree to 1 %)."""
    trainer, cfg, batch = infer_trainer
    items, variables = cfg.train.infer_items, trainer.network.trainable_variables
    white, reference = batch["sampler_noise"][:items], batch["audio"][:items]

    def sample():
        return trainer.samplers[0](batch["mel"][:items], lambda step, *_: white[:, step - 1])

    def smooth():
        audio = sample()
        return tf.reduce_mean(losses.spectral_convergence(audio, reference)
                              + tf.reduce_mean(tf.abs(audio - reference), -1))

    with tf.GradientTape(persistent=True) as tape:
        whole = tf.reduce_mean(losses.output_loss(sample(), reference, cfg.train.infer_waveform_weight))
        part = smooth()
    grads = tape.gradient(whole, variables)
    assert all(g is not None for g in grads)
    zero = [v.path for v, g in zip(variables, grads) if not np.any(g.numpy())]
    assert len(zero) <= 0.05 * len(variables), zero
    # half the gradient's own direction, half a random one: a random direction alone is nearly orthogonal to the
    # gradient in 56k dimensions (its slope fell under 1e-3 in one run), so the check would measure rounding
    rng = np.random.default_rng(0)
    part_grads = [g.numpy() for g in tape.gradient(part, variables)]

    def unit(vectors):
        norm = np.sqrt(sum(np.sum(x.astype(np.float64) ** 2) for x in vectors))
        return [(x / norm).astype(np.float32) for x in vectors]
    direction = unit([a + b for a, b in zip(unit(part_grads),
                                            unit([rng.standard_normal(v.shape) for v in variables]))])
    slope = sum(float(np.sum(g * d)) for g, d in zip(part_grads, direction))
    start = [v.numpy() for v in variables]
    values = []
    for sign in (1, -1):
        for v, w, d in zip(variables, start, direction):
            v.assign(w + sign * 1e-2 * d)
        values.append(float(smooth()))
    for v, w in zip(variables, start):
        v.assign(w)
    assert abs(slope) > 1e-3  # the loss does depend on the weights along this direction
    assert (values[0] - values[1]) / 2e-2 == pytest.approx(slope, rel=0.03)


def test_training_with_it_lowers_the_output_loss_on_a_fixed_batch(infer_trainer):
    """30 steps on one batch with InferGrad's loss, its two schedules in turn: every step finite, the output loss
    logged, and both schedules' output losses on that batch fall."""
    trainer, cfg, batch = infer_trainer

    def output_losses():
        items, white = cfg.train.infer_items, batch["sampler_noise"][:cfg.train.infer_items]
        return [float(tf.reduce_mean(losses.output_loss(
            sampler(batch["mel"][:items], lambda step, *_: white[:, step - 1]), batch["audio"][:items], 0.5)))
            for sampler in trainer.samplers]

    before = output_losses()
    steps = [trainer.train_step(batch) for _ in range(30)]
    after = output_losses()
    assert all(np.isfinite(float(s["loss"])) and float(s["output_loss"]) > 0 for s in steps)
    assert after[0] < 0.9 * before[0] and after[1] < 0.9 * before[1], (before, after)
