"""Export a trained model as TFLite / LiteRT graphs: the sampler unrolled, builtin ops only, batch 1.

    python -m export.tflite --model runs/demo --output exported/tflite

Writes <variant>.tflite for float32, float16 (weights), dynamic_int8 (weights) and full_int8 (weights and
activations, calibrated on real training mels), plus float32_noise_input.tflite (noise as an input, for
reproducible output), and wavegrad.json (`wavegrad_tf.runtime.Metadata`: features, schedule).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS
VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")


def define_flags():
    flags.DEFINE_string("model", None, "A training run's folder or a pretrained model's name.", required=True)
    flags.DEFINE_string("output", "exported/tflite", "Output folder.")
    flags.DEFINE_list("variants", list(VARIANTS), f"Any of {', '.join(VARIANTS)}.")
    flags.DEFINE_string("schedule", None, "Sampling schedule unrolled into the graph; default: the config's.")
    flags.DEFINE_integer("calibration_frames", 40, "Frames per calibration mel (full_int8 needs one fixed length).")


def _saved_model(model, fn, directory: str) -> str:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", fn)
    archive.write_out(directory, verbose=False)
    return directory


def _convert(saved_model_dir: str, variant: str, calibration=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    # Builtins only: the LiteRT interpreter cannot run Flex (SELECT_TF_OPS) graphs.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "full_int8":
        converter.representative_dataset = calibration
    return converter.convert()


def calibration_mels(model, cfg, frames: int, count: int = 16):
    """Log-mels of `frames` frames from the run's training audio (one fixed length, as calibration needs)."""
    import numpy as np

    from wavegrad_tf import runs
    from wavegrad_tf.audio import load_audio
    from wavegrad_tf.mel import log_mel_spectrogram

    mels = []
    for path in runs.training_files(model):
        m = log_mel_spectrogram(load_audio(path, cfg.audio.sample_rate), cfg.audio, use_tf=False)
        mels += [m[i:i + frames] for i in range(0, len(m) - frames + 1, frames)]
        if len(mels) >= count:
            break
    return [np.asarray(m[None], np.float32) for m in mels[:count]]


def export_tflite(model, output, variants=VARIANTS, schedule=None, calibration_frames: int = 40) -> dict:
    """Writes the .tflite files and wavegrad.json; returns {name: path}."""
    from export import graphs
    from wavegrad_tf import runs, schedules
    from wavegrad_tf.runtime import Metadata

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants: {unknown} not among {VARIANTS}")
    cfg, network = runs.load_model(model)
    metadata = Metadata(audio=cfg.audio, betas=tuple(schedules.schedule_for(cfg, schedule=schedule)))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        sampled = _saved_model(network, graphs.on_device_function(network, cfg, metadata.betas), f"{tmp}/sampled")
        with_noise = _saved_model(network, graphs.on_device_function(network, cfg, metadata.betas, noise_input=True),
                                  f"{tmp}/with_noise")
        mels = calibration_mels(model, cfg, calibration_frames) if "full_int8" in variants else []
        for variant in variants:
            written[variant] = output / f"{variant}.tflite"
            written[variant].write_bytes(_convert(sampled, variant, lambda: ({"mel": m} for m in mels)))
        written["float32_noise_input"] = output / "float32_noise_input.tflite"
        written["float32_noise_input"].write_bytes(_convert(with_noise, "float32"))
    metadata.save(output)
    return written


def main(argv):
    del argv
    for name, path in export_tflite(FLAGS.model, FLAGS.output, FLAGS.variants, FLAGS.schedule,
                                    FLAGS.calibration_frames).items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
