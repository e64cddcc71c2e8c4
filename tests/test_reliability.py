"""Every row of tests/reliability_table.py, run as a user would, plus the data-loss, Ctrl-C and long-input cases."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, SPEECH, TF_LOADED, TF_VERBOSE, TINY, run_module
from reliability_table import CASES, fill, markdown


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "audio_cache" not in p.parts}


@pytest.fixture(scope="module")
def outcomes(tiny_run, tiny_tflite, tmp_path_factory):
    """Each case run in its own scratch folder with its own copy of the tiny run, three at a time."""
    def run(index):
        case = CASES[index]
        work = tmp_path_factory.mktemp(f"case{index}")
        fixtures = {"run": str(work / "run"), "tflite": str(tiny_tflite / "float16.tflite"),
                    "speech": str(SPEECH[1]), "work": str(work)}
        shutil.copytree(tiny_run, work / "run")
        if case.setup:
            case.setup(work, fixtures)
        before = _digest(work / "run")
        proc = run_module([fill(a, fixtures) for a in case.args], env=TF_VERBOSE, check=False, timeout=300)
        return proc, before, _digest(work / "run"), fixtures

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(run, range(len(CASES))))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.entry}: {c.does}" for c in CASES])
def test_case(outcomes, index):
    case = CASES[index]
    proc, before, after, fixtures = outcomes[index]
    message = fill(case.message, fixtures)
    assert proc.returncode == case.status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if case.status:
        assert message in proc.stderr.strip().splitlines()[-1], proc.stderr[-3000:]
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
        if not case.tensorflow:  # refused before the model (or anything of TensorFlow) was loaded
            assert TF_LOADED not in proc.stderr, proc.stderr[-3000:]
        if case.entry == "train":  # a refused run is left as it was
            assert after == before
    else:
        assert message in proc.stdout, proc.stdout[-3000:]
        if case.setup and case.setup.__name__ == "_corrupt_newest_checkpoint":
            assert "is unreadable" in proc.stderr and "ckpt-150" in proc.stderr


def test_the_documentation_lists_exactly_these_cases():
    assert (ROOT / "docs" / "reliability.md").read_text() == markdown()


def test_a_refused_resume_leaves_a_run_that_trains_and_vocodes(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "run")
    args = ["-m", "wavegrad_tf.train", "--config", TINY, "--model_dir", str(tmp_path / "run"),
            "--override", "train.learning_rate=2e-3"]
    refused = run_module(args + ["--steps", "160", "--override", "audio.n_mels=80"], check=False)
    assert refused.returncode == 2 and "audio.n_mels: 64 -> 80" in refused.stderr
    resumed = run_module(args + ["--steps", "152"])
    assert "resumed from" in resumed.stdout and "at step 150" in resumed.stdout
    run_module(["-m", "wavegrad_tf.infer", "--model", str(tmp_path / "run"), "--input", str(SPEECH[0]),
                "--output", str(tmp_path / "o.wav")])
    assert sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[0]).frames


def test_a_run_can_move(tmp_path, monkeypatch, caplog, capsys):
    """Trained with a relative model_dir from one folder, moved, resumed and vocoded from two others."""
    from wavegrad_tf import train_lib
    from wavegrad_tf.vocoders import load_vocoder

    for name in ("first", "second", "third"):
        (tmp_path / name).mkdir()
    small = tmp_path / "corpus"
    small.mkdir()
    for path in SPEECH[:3]:
        shutil.copy(path, small / path.name)
    monkeypatch.chdir(tmp_path / "first")
    train_lib.run(TINY, "run", 2, data_dir=str(small))
    shutil.move(tmp_path / "first" / "run", tmp_path / "second" / "moved")
    monkeypatch.chdir(tmp_path / "third")
    assert train_lib.run(TINY, "../second/moved", 4, data_dir=str(small))["step"] == 4
    assert "at step 2" in capsys.readouterr().out
    audio = load_vocoder("../second/moved").vocode(np.full((20, 64), -5.0, np.float32), seed=0)
    assert audio.shape == (20 * 200,) and np.isfinite(audio).all()
    assert "unreadable" not in caplog.text


def test_ctrl_c_saves_where_training_stopped(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-m", "wavegrad_tf.train", "--config", TINY, "--model_dir",
                             str(tmp_path / "run"), "--steps", "100000", "--override", "train.learning_rate=2e-3",
                             "--override", "train.log_every=1", "--override", "train.checkpoint_every=1000"],
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a suite started with `&` from a script passes SIGINT on ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("step 165/"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    saved = [line for line in out.splitlines() if line.startswith("interrupted at step")]
    step = int(saved[0].split()[3].rstrip(":"))
    assert step >= 165 and (tmp_path / "run" / "checkpoints" / f"ckpt-{step}.index").exists()


def test_stop_request_turns_signals_into_a_flag_then_a_second_ctrl_c_into_an_interrupt():
    from wavegrad_tf.trainer import _StopRequest

    before = {s: signal.signal(s, h) for s, h in ((signal.SIGINT, signal.default_int_handler),
                                                  (signal.SIGTERM, signal.SIG_DFL))}
    try:
        stop = _StopRequest()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        stop.restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nohup-style: an ignored signal stays ignored
        _StopRequest().restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_long_input_streams_in_bounded_memory_with_progress(tiny_run, tmp_path, speech):
    """10 minutes of audio through the infer CLI: peak RSS within 60 MB of a 1-minute input's (the 10-minute
    audio alone is 38 MB as float32, its mel 31 MB), and a progress line at every tenth."""
    (tmp_path / "one.txt").write_text("0.5\n")

    def peak_mib(seconds):
        audio = np.tile(speech, seconds * 16000 // len(speech) + 1)[:seconds * 16000]
        sf.write(tmp_path / f"{seconds}.wav", audio, 16000)
        script = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
                  "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr)")
        out = run_module(["-c", script, sys.executable, "-m", "wavegrad_tf.infer", "--model", str(tiny_run),
                          "--input", str(tmp_path / f"{seconds}.wav"), "--output", str(tmp_path / f"{seconds}.out.wav"),
                          "--schedule", str(tmp_path / "one.txt")])
        status, rss = out.stdout.split()[:2]
        assert status == "0", out.stdout
        assert sf.info(tmp_path / f"{seconds}.out.wav").frames == seconds * 16000
        return int(rss) / 1024, out.stdout

    short, _ = peak_mib(60)
    long, log = peak_mib(600)
    assert long - short < 60, (short, long)
    assert log.count("vocoded ") == 10 and "of 600.0 s" in log


def test_a_run_trained_with_a_config_file_resumes_without_it(tiny_run, tmp_path):
    """The third audit resumed a run trained with --config FILE without --config: the demo preset was loaded instead,
    and the resume listed network changes the user never made (then refused them). A resume without --config
    continues the run's own config.yaml."""
    shutil.copytree(tiny_run, tmp_path / "run")
    proc = run_module(["-m", "wavegrad_tf.train", "--model_dir", str(tmp_path / "run"), "--steps", "151"])
    assert "resumed from" in proc.stdout and "at step 150" in proc.stdout
    assert "resuming with" not in proc.stdout and "model." not in proc.stdout, proc.stdout
