"""The second audit's five ways to lose data, each reproduced as the audit did it and checked to lose nothing now."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SPEECH, TINY, run_module
from wavegrad_tf.runs import Run


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "audio_cache" not in p.parts}


def last_error(proc):
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("override, field", [("train.learning_rate=.nan", "train.learning_rate"),
                                             ("model.noise_scale=.inf", "model.noise_scale"),
                                             ("audio.log_floor=.nan", "audio.log_floor")])
def test_a_non_finite_number_is_refused_before_the_run_changes(tiny_run, tmp_path, override, field):
    """The audit resumed with --override train.learning_rate=.nan: it printed the change, skipped every step, exited
    0, and the rotation deleted the last good checkpoint."""
    shutil.copytree(tiny_run, tmp_path / "run")
    before = digest(tmp_path / "run")
    proc = run_module(["-m", "wavegrad_tf.train", "--config", TINY, "--model_dir", str(tmp_path / "run"), "--steps",
                       "200", "--override", override], check=False)
    assert proc.returncode == 2 and f"{field}: expected a finite number, got" in last_error(proc), proc.stderr[-2000:]
    assert digest(tmp_path / "run") == before


def test_a_run_whose_every_step_is_skipped_stops_and_keeps_its_last_good_checkpoint(tiny_run, tmp_path):
    """Weights gone non-finite (how a NaN learning rate ended): every later step is skipped. Training stops with an
    error at the next progress line, and no checkpoint of the broken weights replaces a good one."""
    import tensorflow as tf

    from wavegrad_tf import data, runs
    from wavegrad_tf.trainer import Trainer

    shutil.copytree(tiny_run, tmp_path / "run")
    checkpoints = digest(tmp_path / "run" / "checkpoints")
    cfg = Run.open(tmp_path / "run").config
    trainer = Trainer(cfg, tmp_path / "run")
    for var in trainer.network.trainable_variables[:3]:
        var.assign(tf.fill(var.shape, float("nan")))
    clips = data.prepare_corpus(SPEECH[0].parent, cfg, tmp_path / "cache").clips[:4]
    with pytest.raises(runs.RunError, match=r"every step from 151 to 160 was skipped .* keeping .*ckpt-150"):
        trainer.fit(clips, [], 400)
    with pytest.raises(runs.RunError, match=r"the weights are not finite at step 160 .*: not saved, keeping .*ckpt-150"):
        trainer.save()
    assert digest(tmp_path / "run" / "checkpoints") == checkpoints


def test_a_failed_resume_leaves_the_run_as_it_was(tiny_run, tmp_path):
    """The audit resumed with a --data_dir of unusable files: data_split.json was rewritten with empty lists before
    the run failed. Silent files (every one skipped) and corrupt ones alike now fail before anything is written."""
    from wavegrad_tf import priors
    from wavegrad_tf.config import load_config
    from wavegrad_tf.errors import UserError

    shutil.copytree(tiny_run, tmp_path / "run")
    before = digest(tmp_path / "run")
    (tmp_path / "bad").mkdir()
    sf.write(tmp_path / "bad" / "silent.wav", np.zeros(32000, np.float32), 16000)
    (tmp_path / "bad" / "corrupt.wav").write_bytes(b"RIFF\x00\x00not audio")
    proc = run_module(["-m", "wavegrad_tf.train", "--config", TINY, "--model_dir", str(tmp_path / "run"), "--steps",
                       "200", "--data_dir", str(tmp_path / "bad")], check=False)
    assert proc.returncode == 2 and "no usable training audio (0 of 2 files usable" in last_error(proc)
    assert digest(tmp_path / "run") == before
    # A measured normaliser of 0 (audio too quiet to hold energy) is refused, never written to config.yaml.
    cfg = load_config(TINY, ["diffusion.prior=priorgrad"])
    with pytest.raises(UserError, match="largest frame energy is 0.0; expected a positive number"):
        priors.prior_for(cfg).measured(lambda: 0.0)


def test_infer_never_writes_over_its_input(tiny_run, tmp_path):
    recording = tmp_path / "speech.wav"
    sf.write(recording, sf.read(SPEECH[0])[0], 16000)
    original = recording.read_bytes()
    os.symlink(recording, tmp_path / "link.wav")
    for output in (recording, tmp_path / "." / "speech.wav", tmp_path / "link.wav"):
        proc = run_module(["-m", "wavegrad_tf.infer", "--model", str(tiny_run), "--input", str(recording),
                           "--output", str(output)], check=False)
        assert proc.returncode == 2 and "is the input" in last_error(proc), proc.stderr[-2000:]
    assert recording.read_bytes() == original


def test_a_partial_re_export_replaces_the_folder_whole(tiny_run, tiny_tflite, tmp_path):
    """The audit exported one variant into a folder holding others: wavegrad.json got the new schedule, the old
    .tflite files stayed, and gave non-finite audio. The folder is now replaced whole, and a folder holding anything
    but an export is refused."""
    from export.tflite_lib import export_tflite
    from wavegrad_tf.errors import UserError
    from wavegrad_tf.vocoders import load_vocoder

    folder = tmp_path / "tflite"
    shutil.copytree(tiny_tflite, folder)
    (tmp_path / "two.txt").write_text("0.001\n0.5\n")  # the export there has three steps
    export_tflite(tiny_run, folder, variants=["float16"], schedule=str(tmp_path / "two.txt"), signature_frames=(72,))
    assert sorted(p.name for p in folder.iterdir()) == ["float16.tflite", "wavegrad.json"]
    vocoder = load_vocoder(folder / "float16.tflite")
    assert vocoder.metadata.iterations == 2 and np.isfinite(vocoder.vocode(np.full((100, 64), -5, np.float32))).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="exists and is not an earlier export to replace"):
        export_tflite(tiny_run, tmp_path / "mine", variants=["float16"], signature_frames=(72,))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_one_training_process_per_run_folder(tiny_run, tmp_path):
    """Two `train` processes on one --model_dir both exited 0, each overwriting the other's checkpoints. The second
    is refused with the first's PID; after the first is killed (-9), its lock does not outlive it."""
    shutil.copytree(tiny_run, tmp_path / "run")
    args = ["-m", "wavegrad_tf.train", "--config", TINY, "--model_dir", str(tmp_path / "run")]
    first = subprocess.Popen([sys.executable, *args, "--steps", "100000", "--override", "train.log_every=1",
                              "--override", "train.checkpoint_every=100000"], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in first.stdout:
            if line.startswith("precision: "):  # printed once the run folder is locked
                break
        second = run_module(args + ["--steps", "100000"], check=False)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"another training process (PID {first.pid}) is writing this run" in last_error(second)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    time.sleep(0.5)
    third = run_module(args + ["--steps", "150"], check=False)
    assert third.returncode == 0 and "is already at step 150: nothing to train" in third.stdout, third.stderr[-2000:]
