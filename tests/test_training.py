import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from conftest import ROOT, SPEECH, TINY, run_module
from wavegrad_tf.runs import Run
from wavegrad_tf import data, diffusion, mel, schedules, train_lib
from wavegrad_tf.config import Consistency, load_config
from wavegrad_tf.model import build_model, load_network
from wavegrad_tf.runs import checkpoint_variables
from wavegrad_tf.runtime import PositionalNoise
from wavegrad_tf.losses import noise_loss
from wavegrad_tf.trainer import Trainer


def trainer_on(cfg, tmp_path, clips):
    """A Trainer for `cfg` with PriorGrad's normaliser measured on `clips` (as train.run does)."""
    cfg = train_lib.measure_prior(cfg, clips)
    return Trainer(cfg, tmp_path / "run"), cfg


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_corpus")
    for path in SPEECH[:3]:
        sf.write(folder / f"{path.stem}.flac", sf.read(path)[0], 16000)
    return folder


def test_overfits_one_clip(tmp_path):
    """A tiny model on one clip: loss falls at least 3x in 300 steps, and its 6-step sample is closer to
    the clip in log-mel L1 than noise of the clip's loudness is (measured on AVX2: 5.6x, 0.62 of noise's)."""
    cfg = load_config(TINY, ["train.learning_rate=2e-3", "train.segment_length=4000"])
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:1]
    trainer, cfg = trainer_on(cfg, tmp_path, clips)
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    losses = [float(trainer.train_step(next(batches))["loss"]) for _ in range(300)]
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < first / 3, (first, last)

    audio = np.fromfile(clips[0].cache, "<i2")[cfg.audio.win_length // 2:][:clips[0].num_samples] / 32767.0
    audio = audio[:len(audio) // cfg.audio.hop_length * cfg.audio.hop_length].astype(np.float32)
    features = mel.log_mel_spectrogram(audio, cfg.audio, use_tf=False)[None, :-1]
    sample = diffusion.Sampler(lambda y, m, c: trainer.averaged_model()([y, m, c]), cfg,
                               schedules.get_schedule("manual-6"), Consistency())(
        features, PositionalNoise(0)).numpy()[0]
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * audio.std()

    def dist(x):
        return mel.log_mel_l1(x, audio, cfg.audio, use_tf=False)

    assert dist(sample) < 0.8 * dist(noise), (dist(sample), dist(noise))


def test_nonfinite_step_is_skipped(tmp_path, tiny_cfg):
    clips = data.prepare_corpus(SPEECH[0].parent, tiny_cfg, tmp_path / "cache").clips[:2]
    trainer, cfg = trainer_on(tiny_cfg, tmp_path, clips)
    batch = next(iter(data.dataset(clips, cfg, 4, seed=0)))
    before = {k: np.asarray(v).copy() for k, v in checkpoint_variables(trainer.network).items()}
    bad = dict(batch, noisy_audio=tf.tensor_scatter_nd_update(batch["noisy_audio"], [[0, 3]], [np.nan]))
    loss = trainer.train_step(bad)["loss"]
    assert not np.isfinite(float(loss))
    assert all(np.array_equal(np.asarray(v), before[k]) for k, v in checkpoint_variables(trainer.network).items())
    assert int(trainer.step) == 1 and int(trainer.optimizer.iterations) == 0
    loss = trainer.train_step(batch)["loss"]
    assert np.isfinite(float(loss)) and int(trainer.optimizer.iterations) == 1
    assert any(not np.array_equal(np.asarray(v), before[k]) for k, v in checkpoint_variables(trainer.network).items())


def test_mirrored_two_cpus_equals_one_device(tmp_path, small_corpus):
    """Same global batch: the 2-replica update equals the single-device one within 1e-5 after 3 steps."""
    out = run_module([str(ROOT / "tests" / "mirrored_check.py"), TINY, str(small_corpus), str(tmp_path)])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["steps"] == [3, 3]
    for single, mirrored in result["losses"]:
        assert abs(single - mirrored) <= 1e-5 * max(1.0, abs(single))
    assert result["max_weight_diff"] <= 1e-5 and result["max_average_diff"] <= 1e-5
    assert result["moved"] > 1e-4  # both trainers did update the weights


def test_validation_runs_every_validate_every_steps_and_at_the_end(tmp_path, small_corpus):
    """Validation (off in the tiny config) at steps 2 and 3 of a 3-step run: a finite loss at each noise level and
    a vocoded clip's log-mel distance, in the returned metrics and in TensorBoard's validation folder."""
    metrics = train_lib.run(TINY, str(tmp_path / "run"), 3, data_dir=str(small_corpus),
                            overrides=["train.validate_every=2", "train.log_every=1"])
    names = ["val_loss_0.1", "val_loss_0.5", "val_loss_0.9", "val_mel_l1"]
    assert metrics["step"] == 3 and all(0 < metrics[k] < 20 for k in names), metrics
    logged = {}
    for path in (tmp_path / "run" / "validation").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                logged.setdefault(value.tag, []).append(event.step)
    assert all(logged[k] == [2, 3] for k in names) and logged["vocoded"] == [2, 3], logged


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_two_processes_end_identical(tmp_path, small_corpus):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    model_dir = tmp_path / "run"
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "wavegrad_tf.train", "--config", TINY, "--strategy", "multi_worker",
             "--data_dir", str(small_corpus), "--model_dir", str(model_dir), "--steps", "4",
             "--override", "train.log_every=1"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "2 replica(s)" in outputs[0] and "step 4/4" in outputs[0]
    chief, other = (Trainer(Run.open(d).config, d) for d in (model_dir, model_dir / "workers" / "1"))
    assert chief.global_step == other.global_step == 4
    initial = checkpoint_variables(build_model(Run.open(model_dir).config))
    for path, var in checkpoint_variables(chief.network).items():
        np.testing.assert_array_equal(np.asarray(var), np.asarray(checkpoint_variables(other.network)[path]))
    assert max(np.abs(np.asarray(v) - np.asarray(initial[p])).max() for p, v in checkpoint_variables(chief.network).items()
               if "kernel" in p) > 1e-4


def test_killed_run_resumes_from_last_checkpoint(tmp_path, small_corpus):
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "wavegrad_tf.train", "--config", TINY, "--data_dir", str(small_corpus),
            "--model_dir", str(model_dir), "--override", "train.log_every=1", "--override", "train.checkpoint_every=3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args + ["--steps", "100000"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("step 8/") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    killed_at = Trainer(Run.open(model_dir).config, model_dir).global_step
    assert killed_at >= 6 and latest.endswith(f"ckpt-{killed_at}")

    out = subprocess.run(args + ["--steps", str(killed_at + 5)], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from {latest} at step {killed_at}" in out.stdout
    assert f"step {killed_at + 1}/{killed_at + 5}" in out.stdout and f"step {killed_at + 5}/" in out.stdout
    final = Trainer(Run.open(model_dir).config, model_dir)
    assert final.global_step == int(final.optimizer.iterations.numpy()) == killed_at + 5


def test_mixed_precision_step_is_finite_and_keeps_float32_weights(tmp_path, tiny_cfg):
    cfg = load_config(TINY, ["train.precision=mixed_float16"])
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:2]
    trainer, cfg = trainer_on(cfg, tmp_path, clips)
    assert trainer.network.compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in trainer.network.weights)
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    losses = [float(trainer.train_step(next(batches))["loss"]) for _ in range(10)]
    # float16 gradients overflow at the initial scale 2^15: those steps are skipped and the scale halves.
    applied, scale = int(trainer.optimizer.iterations.numpy()), float(trainer.optimizer.dynamic_scale.numpy())
    assert np.all(np.isfinite(losses)) and applied >= 5
    assert scale == 2.0 ** (15 - (10 - applied))


def test_xla_step_makes_the_same_update(tmp_path):
    """train.jit_compile: the XLA-compiled step gives the plain step's loss, gradient norm and weight update (float32,
    same batch, same initial weights) to float rounding."""
    cfg = load_config(TINY)
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:2]
    plain, cfg = trainer_on(cfg, tmp_path / "plain", clips)
    jit = Trainer(load_config(TINY, [f"diffusion.prior_energy_max={cfg.diffusion.prior_energy_max}",
                                     "train.jit_compile=true"]), tmp_path / "jit")
    for path, var in checkpoint_variables(jit.network).items():
        var.assign(checkpoint_variables(plain.network)[path])
    start = {path: np.asarray(var) for path, var in checkpoint_variables(plain.network).items()}
    batch = next(iter(data.dataset(clips, cfg, 4, seed=0)))
    for _ in range(2):
        expected, got = plain.train_step(batch), jit.train_step(batch)
        np.testing.assert_allclose([float(got[k]) for k in ("loss", "grad_norm")],
                                   [float(expected[k]) for k in ("loss", "grad_norm")], rtol=1e-4)
    # Adam turns a near-zero gradient into a full-size step of either sign, so one weight in thousands may move
    # the other way under XLA's rounding: the updates are compared as a whole, against their own size.
    def update(trainer):
        weights = checkpoint_variables(trainer.network)
        return np.concatenate([np.ravel(np.asarray(weights[p]) - start[p]) for p in sorted(start)])

    moved, moved_jit = update(plain), update(jit)
    assert np.linalg.norm(moved) > 2 * cfg.train.learning_rate  # the two steps did change the weights
    assert np.linalg.norm(moved_jit - moved) / np.linalg.norm(moved) < 1e-2  # a wrong update is off by ~1
    assert np.mean(np.isclose(moved_jit, moved, rtol=1e-3, atol=1e-7)) > 0.999


def test_bfloat16_steps_stay_finite_and_learn(tmp_path):
    """mixed_bfloat16: bfloat16 compute, float32 weights, no loss scaling needed: 30 steps all applied, all finite,
    and the loss on one fixed batch (its noise and noise levels held, unlike the steps' losses) falls."""
    cfg = load_config(TINY, ["train.precision=mixed_bfloat16", "train.learning_rate=2e-3"])
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:2]
    trainer, cfg = trainer_on(cfg, tmp_path, clips)
    assert trainer.network.compute_dtype == "bfloat16" and all(v.dtype == "float32" for v in trainer.network.weights)
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    fixed = next(batches)

    def fixed_loss():
        pred = trainer.network([fixed["noisy_audio"], fixed["mel"], fixed["conditioning"]], training=False)
        return float(tf.reduce_mean(noise_loss(fixed["noise"], pred, trainer.prior, fixed["mel"])))

    before = fixed_loss()
    losses = [float(trainer.train_step(next(batches))["loss"]) for _ in range(30)]
    assert np.all(np.isfinite(losses)) and int(trainer.optimizer.iterations.numpy()) == 30
    after = fixed_loss()
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("ramp", [True, False])
def test_weight_average_follows_its_formula(tmp_path, ramp):
    """ema_n = d_n ema_{n-1} + (1 - d_n) w_n with d_n = min(decay, (1 + n) / (10 + n)), n the update count
    before step n (d_n = decay without the ramp); checked on every weight after 12 steps, and the run's
    inference weights are the average."""
    cfg = load_config(TINY, ["train.ema_decay=0.9", "train.learning_rate=5e-3", f"train.ema_ramp={str(ramp).lower()}"])
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:2]
    trainer, cfg = trainer_on(cfg, tmp_path, clips)
    expected = {p: np.asarray(v).astype(np.float64) for p, v in checkpoint_variables(trainer.network).items()}
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    for n in range(12):
        trainer.train_step(next(batches))
        decay = min(0.9, (1 + n) / (10 + n)) if ramp else 0.9
        for path, var in checkpoint_variables(trainer.network).items():
            expected[path] = decay * expected[path] + (1 - decay) * np.asarray(var)
    for path, var in trainer.ema.items():
        np.testing.assert_allclose(var.numpy(), expected[path], atol=1e-6, err_msg=path)
    assert any(np.abs(var.numpy() - np.asarray(checkpoint_variables(trainer.network)[p])).max() > 1e-4
               for p, var in trainer.ema.items())  # the average is not the weights
    trainer.save()
    run = Run.open(tmp_path / "run")
    _, loaded = run.config, load_network(run)
    for path, var in checkpoint_variables(loaded).items():
        np.testing.assert_array_equal(np.asarray(var), trainer.ema[path].numpy())


def test_learning_rate_warms_up_then_halves():
    from wavegrad_tf.trainer import LearningRate

    rate = LearningRate(1e-3, warmup=10, half_life=100)
    got = [float(rate(s)) for s in (0, 4, 9, 10, 110, 210)]
    np.testing.assert_allclose(got, [1e-4, 5e-4, 1e-3, 1e-3, 5e-4, 2.5e-4], rtol=1e-5)


def test_prior_weights_the_loss_by_the_noise_std():
    """L1 of the error whitened by the prior: as is under N(0, I), over the noise's std under PriorGrad."""
    from wavegrad_tf import priors

    cfg = load_config(TINY, ["diffusion.prior_energy_max=1.0", "diffusion.prior_std_min=0.1"])
    hop = cfg.audio.hop_length
    mel = np.stack([np.full(cfg.audio.n_mels, np.log(1e-5)), np.full(cfg.audio.n_mels, 0.0)])[None].astype(np.float32)
    noise, pred = np.full((1, 2 * hop), 0.5, np.float32), np.zeros((1, 2 * hop), np.float32)
    standard = priors.Standard(cfg)
    np.testing.assert_allclose(noise_loss(noise, pred, standard, mel).numpy(), noise, rtol=1e-6)
    # frame 0 is silent (std at its floor 0.1), frame 1 at energy sqrt(n_mels) > 1 (std clipped to 1)
    expected = np.concatenate([np.full(hop, 5.0), np.full(hop, 0.5)])[None]
    np.testing.assert_allclose(noise_loss(noise, pred, priors.PriorGrad(cfg), mel).numpy(), expected, rtol=1e-5)


def test_fine_tuning_starts_from_another_models_averaged_weights(tiny_run, tmp_path):
    """--init_from: the new run's config is the model's, its weights and their average start from the model's
    averaged weights (step 0), the average without a decay ramp, and a network that differs is refused with the
    fields named."""
    from wavegrad_tf.config import ConfigError

    train_lib.run(None, str(tmp_path / "tuned"), steps=1, init_from=str(tiny_run),
              overrides=["train.learning_rate=1e-6", "train.warmup_steps=0"])
    run = Run.open(tiny_run)
    _, source = run.config, load_network(run)
    tuned = Trainer(Run.open(tmp_path / "tuned").config, tmp_path / "tuned")
    assert tuned.global_step == 1 and Run.open(tmp_path / "tuned").config.model == Run.open(tiny_run).config.model
    assert Run.open(tiny_run).config.train.ema_ramp and not Run.open(tmp_path / "tuned").config.train.ema_ramp
    for path, var in checkpoint_variables(source).items():
        np.testing.assert_allclose(np.asarray(checkpoint_variables(tuned.network)[path]), np.asarray(var), atol=1e-4)
    with pytest.raises(ConfigError, match=r"--init_from .*model.mel_channels: 32 -> 128"):
        train_lib.run("demo", str(tmp_path / "other"), steps=1, init_from=str(tiny_run))
    assert not (tmp_path / "other").exists()
