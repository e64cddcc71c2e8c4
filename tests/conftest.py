import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests" / "tiny.yaml")
SPEECH = sorted((ROOT / "wavegrad_tf" / "demo_data" / "speech").glob("*.flac"))


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny model trained for 150 steps on the bundled corpus: a training run's folder."""
    from wavegrad_tf import train

    model_dir = tmp_path_factory.mktemp("tiny_run")
    train.run(TINY, str(model_dir), steps=150, overrides=["train.learning_rate=2e-3"])
    return model_dir


@pytest.fixture(scope="session")
def tiny_model_and_mel(tiny_run, speech):
    """(config, model, log-mel of 1.5 s of real speech) of the tiny run."""
    from wavegrad_tf import runs
    from wavegrad_tf.mel import log_mel_spectrogram

    cfg, model = runs.load_model(tiny_run)
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
    from export.tflite import export_tflite

    out = tmp_path_factory.mktemp("tflite")
    export_tflite(tiny_run, out, chunk_frames=TFLITE_SIZES)
    export_tflite(tiny_run, out / "full_int8", variants=["full_int8"], chunk_frames=TFLITE_SIZES,
                  consistency={"kind": "none"})
    return out


def tflite_files(folder):
    """{variant: path} of the tiny export, the full int8 file from its own folder."""
    from export.tflite import VARIANTS

    return {v: folder / "full_int8" / f"{v}.tflite" if v == "full_int8" else folder / f"{v}.tflite" for v in VARIANTS}
