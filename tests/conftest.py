import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
# Property-based tests (tests/test_properties.py): `ci` keeps them to about a minute; `thorough` tries 20 times more.
settings.register_profile("ci", max_examples=50, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TINY = str(ROOT / "tests" / "tiny.yaml")
SPEECH = sorted((ROOT / "wavegrad_tf" / "demo_data" / "speech").glob("*.flac"))


# TensorFlow's C++ log at INFO: its import prints this line, so a test can tell whether a command loaded it (commands
# keep that log quiet unless the user asks, as this environment does).
TF_LOADED = "cpu_feature_guard"
TF_VERBOSE = {"TF_CPP_MIN_LOG_LEVEL": "0"}


def run_module(args, env=None, timeout=600, check=True):
    """Runs `python -m ...` in a fresh process (needed where TF device setup must precede any op)."""
    import subprocess

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT)
    if check and proc.returncode:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_cfg():
    from wavegrad_tf.config import load_config

    return load_config(TINY)


@pytest.fixture(scope="session")
def speech(tiny_cfg):
    """A real recorded speech clip at 16 kHz (float32) from the bundled corpus."""
    from wavegrad_tf.audio import load_audio

    return load_audio(SPEECH[0], 16000)


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(folder)` once per test session: the first xdist worker to ask builds it under a lock, the other finds
    it done (each rebuilding the tiny run and its export cost a worker about 2.5 minutes). Tests only read it."""
    import fcntl
    import shutil

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common folder
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (root / f"{name}.built").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny model trained for 150 steps on the bundled corpus: a training run's folder."""
    from wavegrad_tf import train_lib

    return built_once(tmp_path_factory, "tiny_run", lambda folder: train_lib.run(
        TINY, str(folder), steps=150, overrides=["train.learning_rate=2e-3"]))


@pytest.fixture(scope="session")
def tiny_model_and_mel(tiny_run, speech):
    """(config, model, log-mel of 1.5 s of real speech) of the tiny run."""
    from wavegrad_tf.mel import log_mel_spectrogram
    from wavegrad_tf.model import load_network
    from wavegrad_tf.runs import Run

    run = Run.open(tiny_run)

    cfg, model = run.config, load_network(run)
    return cfg, model, log_mel_spectrogram(speech[:24000], cfg.audio, use_tf=False)[:-1]


@pytest.fixture(scope="session")
def tiny_vocoder(tiny_run):
    """The tiny run's KerasVocoder (its config's schedule)."""
    from wavegrad_tf.vocoders.checkpoint import KerasVocoder

    return KerasVocoder.from_run(tiny_run)


# Chunk sizes of the tiny TFLite export: a first chunk above twice the 32-frame overlap, then a larger one.
TFLITE_SIZES = (72, 120)


@pytest.fixture(scope="session")
def tiny_tflite(tiny_run, tmp_path_factory):
    """The tiny run exported as static-shape TFLite files: every variant that holds its mel-consistency
    projection (float32, float16, dynamic int8), and beside them, from a second export without a projection
    (`full_int8/`), the full int8 file. The folder of the first."""
    from wavegrad_tf.export.tflite_lib import export_tflite

    def build(out):
        export_tflite(tiny_run, out, signature_frames=TFLITE_SIZES)
        export_tflite(tiny_run, out / "full_int8", variants=["full_int8"], signature_frames=TFLITE_SIZES,
                      consistency={"kind": "none"})

    return built_once(tmp_path_factory, "tiny_tflite", build)


def tflite_files(folder):
    """{variant: path} of the tiny export, the full int8 file from its own folder."""
    from wavegrad_tf.export.tflite_lib import VARIANTS

    return {v: folder / "full_int8" / f"{v}.tflite" if v == "full_int8" else folder / f"{v}.tflite" for v in VARIANTS}


def scratch_web(root: Path) -> tuple[Path, Path]:
    """(web folder, model): a copy of web/'s page with LiteRT.js's entry point stubbed, a secret beside it and a
    symlink from web/ to it; a model folder holding the served .tflite, its wavegrad.json and another file."""
    import shutil

    web = root / "web"
    web.mkdir()
    for name in ("index.html", "app.js"):
        shutil.copy(ROOT / "web" / name, web / name)
    lib = web / "node_modules" / "@litertjs" / "core" / "dist"
    lib.mkdir(parents=True)
    (lib / "index.js").write_text("export {};\n")
    (root / "secret.txt").write_text("not for the page")
    (web / "secret.js").symlink_to(root / "secret.txt")
    model = root / "model" / "m.tflite"
    model.parent.mkdir()
    model.write_bytes(b"model")
    (model.parent / "wavegrad.json").write_text("{}")
    (model.parent / "other.tflite").write_bytes(b"other")
    return web, model
