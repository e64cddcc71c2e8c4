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


def test_a_re_export_keeps_what_it_may_and_replaces_only_what_an_export_wrote(tiny_run, tiny_tflite, tmp_path):
    """The second audit exported one variant of another schedule into a folder holding others: wavegrad.json got
    the new schedule, the old .tflite files stayed, and gave non-finite audio. An export of other settings replaces
    such a folder whole; one of the same settings adds its file beside the others. The third audit exported into a
    folder holding a wavegrad.json beside the user's notes.txt and images/: they were deleted. Now refused, by name."""
    from wavegrad_tf.export.tflite_lib import export_tflite
    from wavegrad_tf.errors import UserError
    from wavegrad_tf.vocoders import load_vocoder

    folder = tmp_path / "tflite"
    shutil.copytree(tiny_tflite, folder, ignore=shutil.ignore_patterns("full_int8", "dynamic_int8.tflite"))
    kept = (folder / "float32.tflite").read_bytes()
    export_tflite(tiny_run, folder, variants=["dynamic_int8"], signature_frames=(72, 120))
    assert sorted(p.name for p in folder.iterdir()) == ["dynamic_int8.tflite", "float16.tflite", "float32.tflite",
                                                       "wavegrad.json"]
    assert (folder / "float32.tflite").read_bytes() == kept
    (tmp_path / "two.txt").write_text("0.001\n0.5\n")  # the export there has three steps
    export_tflite(tiny_run, folder, variants=["float16"], schedule=str(tmp_path / "two.txt"), signature_frames=(72,))
    assert sorted(p.name for p in folder.iterdir()) == ["float16.tflite", "wavegrad.json"]
    vocoder = load_vocoder(folder / "float16.tflite")
    assert vocoder.metadata.iterations == 2 and np.isfinite(vocoder.vocode(np.full((100, 64), -5, np.float32))).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left behind
    mine = tmp_path / "appassets"
    shutil.copytree(folder, mine)
    (mine / "notes.txt").write_text("keep me")
    (mine / "images").mkdir()
    (mine / "images" / "logo.png").write_bytes(b"png")
    before = digest(mine)
    with pytest.raises(UserError, match=r"--output .*appassets: holds images/, notes.txt, which no export wrote"):
        export_tflite(tiny_run, mine, variants=["float16"], signature_frames=(72,))
    assert digest(mine) == before


def test_the_web_command_adds_its_variant_beside_an_export_and_never_deletes_one(tiny_run, tiny_tflite, tmp_path):
    """The third audit ran `web --model RUN --output EARLIER_EXPORT --variant dynamic_int8` on a float32 + float16
    export: both were deleted. Of the same settings, the page's variant is added beside them; of other settings,
    the command is refused and the folder left as it was."""
    from wavegrad_tf import web_lib
    from wavegrad_tf.errors import UserError
    from wavegrad_tf.vocoders import resolve

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("audio_cache"))
    earlier = tmp_path / "earlier"
    # the run's own settings: the default signatures, which the page's export uses
    from wavegrad_tf.export.tflite_lib import export_tflite

    export_tflite(run, earlier, variants=["float16"])  # one variant keeps it short; the audit's had two
    before = digest(earlier)
    served = web_lib.model_file(resolve(str(run)), "dynamic_int8", earlier)
    assert served == earlier / "dynamic_int8.tflite" and served.stat().st_size > 0
    after = digest(earlier)
    assert {k: after[k] for k in before} == before and set(after) - set(before) == {"dynamic_int8.tflite"}
    other = tmp_path / "other"
    shutil.copytree(tiny_tflite, other, ignore=shutil.ignore_patterns("full_int8"))  # signatures of 72 and 120
    before = digest(other)
    with pytest.raises(UserError, match=r"--output .*other: holds an export of other settings \(dynamic_int8.tflite, "
                                        r"float16.tflite, float32.tflite, wavegrad.json\), which the page does not "
                                        "replace"):
        web_lib.model_file(resolve(str(run)), "float16", other)
    assert digest(other) == before


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


def _umask_022():
    os.umask(0o022)


def test_outputs_are_readable_as_the_umask_says(tiny_run, tmp_path):
    """With umask 022, infer wrote its audio 0600 and exports came out 0700, so TF Serving or a web server running as
    another user could not read them. They now get a new file's and a new folder's modes: 0644 and 0755."""
    from wavegrad_tf.export.tflite_lib import export_tflite

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "wavegrad_tf.infer", "--model", str(tiny_run), "--input", str(SPEECH[0]),
                    "--output", str(tmp_path / "o.wav")], check=True, env=env, cwd=ROOT, capture_output=True,
                   preexec_fn=_umask_022)
    assert (tmp_path / "o.wav").stat().st_mode & 0o777 == 0o644
    previous = os.umask(0o022)
    try:
        export_tflite(tiny_run, tmp_path / "t", variants=["float16"], signature_frames=(72,))
    finally:
        os.umask(previous)
    assert (tmp_path / "t").stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "t").iterdir()} == {0o644}


def test_an_export_killed_midway_leaves_a_partial_the_next_one_removes(tiny_run, tmp_path):
    """kill -9 during an export left a hidden .partial folder beside --output and a 16 MB SavedModel in the temp
    folder, which no later run removed. The SavedModel is now built inside the partial folder, whose name carries the
    writer's PID: the next export of the same --output removes it, and never a live writer's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    args = [sys.executable, "-m", "export.tflite", "--model", str(tiny_run), "--output", str(tmp_path / "t"),
            "--variants", "float16", "--signature_frames", "72"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".t.*.partial/.sampler/saved_model.pb")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partials = list(tmp_path.glob(".t.*.partial"))
    assert [p.name.split(".")[2] for p in partials] == [str(proc.pid)] and not (tmp_path / "t").exists()
    assert not list((tmp_path / "tmp").rglob("saved_model.pb"))  # no SavedModel of it in the temp folder
    live = tmp_path / f".t.{os.getpid()}.keep.partial"  # a live writer's (this process) is left alone
    live.mkdir()
    subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.glob(".t.*")) == [live.name]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["float16.tflite", "wavegrad.json"]
