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
from wavegrad_tf import data, diffusion, metrics
from wavegrad_tf.config import load_config
from wavegrad_tf.mel import log_mel_spectrogram
from wavegrad_tf.model import build_model, checkpoint_variables
from wavegrad_tf.trainer import Trainer


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_corpus")
    for path in SPEECH[:3]:
        sf.write(folder / f"{path.stem}.flac", sf.read(path)[0], 16000)
    return folder


def test_overfits_one_clip(tmp_path):
    """A tiny model on one clip: loss falls at least 3x in 400 steps, and its 6-step sample is closer to
    the clip in log-mel L1 than noise of the clip's loudness is."""
    cfg = load_config(TINY, ["train.learning_rate=2e-3", "train.segment_length=4000"])
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:1]
    trainer = Trainer(cfg, tmp_path / "run")
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    losses = [float(trainer.train_step(next(batches))[0]) for _ in range(400)]
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < first / 3, (first, last)

    audio = np.fromfile(clips[0].cache, "<i2")[cfg.audio.win_length // 2:][:clips[0].num_samples] / 32767.0
    audio = audio[:len(audio) // cfg.audio.hop_length * cfg.audio.hop_length].astype(np.float32)
    mel = log_mel_spectrogram(audio, cfg.audio).numpy()[:-1]
    sample = diffusion.sample(lambda y, m, l: trainer.model([y, m, l]), mel[None], cfg.audio.hop_length,
                              diffusion.get_schedule("manual-6"), diffusion.PositionalNoise(0)).numpy()[0]
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * audio.std()

    def dist(x):
        return metrics.log_mel_l1(x, audio, cfg.audio)

    assert dist(sample) < 0.8 * dist(noise), (dist(sample), dist(noise))


def test_nonfinite_step_is_skipped(tmp_path, tiny_cfg):
    trainer = Trainer(tiny_cfg, tmp_path / "run")
    clips = data.prepare_corpus(SPEECH[0].parent, tiny_cfg, tmp_path / "cache").clips[:2]
    batch = next(iter(data.dataset(clips, tiny_cfg, 4, seed=0)))
    before = {k: np.asarray(v).copy() for k, v in checkpoint_variables(trainer.model).items()}
    bad = dict(batch, noisy_audio=tf.tensor_scatter_nd_update(batch["noisy_audio"], [[0, 3]], [np.nan]))
    loss, _ = trainer.train_step(bad)
    assert not np.isfinite(float(loss))
    assert all(np.array_equal(np.asarray(v), before[k]) for k, v in checkpoint_variables(trainer.model).items())
    assert int(trainer.step) == 1 and int(trainer.optimizer.iterations) == 0
    loss, _ = trainer.train_step(batch)
    assert np.isfinite(float(loss)) and int(trainer.optimizer.iterations) == 1
    assert any(not np.array_equal(np.asarray(v), before[k]) for k, v in checkpoint_variables(trainer.model).items())


def test_mirrored_two_cpus_equals_one_device(tmp_path, small_corpus):
    """Same global batch: the 2-replica update equals the single-device one within 1e-5 after 3 steps."""
    out = run_module([str(ROOT / "tests" / "mirrored_check.py"), TINY, str(small_corpus), str(tmp_path)])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["steps"] == [3, 3]
    for single, mirrored in result["losses"]:
        assert abs(single - mirrored) <= 1e-5 * max(1.0, abs(single))
    assert result["max_weight_diff"] <= 1e-5


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
    chief = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    other = tf.train.load_checkpoint(str(model_dir / "workers" / "1" / "checkpoints"))
    names = [n for n in chief.get_variable_to_shape_map() if n.startswith("model/")]
    assert len(names) == len(checkpoint_variables(build_model(load_config(TINY)))) > 50
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name))
    assert chief.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4


def test_killed_run_resumes_from_last_checkpoint(tmp_path, small_corpus):
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "wavegrad_tf.train", "--config", TINY, "--data_dir", str(small_corpus),
            "--model_dir", str(model_dir), "--override", "train.log_every=1", "--override", "train.checkpoint_every=10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args + ["--steps", "100000"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("step 35/") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    killed_at = int(latest.rsplit("-", 1)[1])
    assert killed_at >= 30
    reader = tf.train.load_checkpoint(latest)
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == killed_at

    out = subprocess.run(args + ["--steps", str(killed_at + 5)], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from {latest} at step {killed_at}" in out.stdout
    assert f"step {killed_at + 1}/{killed_at + 5}" in out.stdout and f"step {killed_at + 5}/" in out.stdout
    final = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(model_dir / "checkpoints")))
    assert final.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == killed_at + 5
    assert final.get_tensor("optimizer/inner_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == killed_at + 5


def test_mixed_precision_step_is_finite_and_keeps_float32_weights(tmp_path, tiny_cfg):
    cfg = load_config(TINY, ["train.precision=mixed_float16"])
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.model.compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in trainer.model.weights)
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:2]
    batches = iter(data.dataset(clips, cfg, 4, seed=0))
    losses = [float(trainer.train_step(next(batches))[0]) for _ in range(10)]
    # float16 gradients overflow at the initial scale 2^15: those steps are skipped and the scale halves.
    applied, scale = int(trainer.optimizer.iterations.numpy()), float(trainer.optimizer.dynamic_scale.numpy())
    assert np.all(np.isfinite(losses)) and applied >= 5
    assert scale == 2.0 ** (15 - (10 - applied))
