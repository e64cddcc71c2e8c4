"""Export a trained model as TFLite / LiteRT graphs: the sampler unrolled, builtin ops only, batch 1, static shapes.

    python -m export.tflite --model runs/demo --output exported/tflite

Replaces --output whole (an earlier export there is removed, anything else is refused) with <variant>.tflite for
float32, float16 (weights), dynamic_int8 (weights) and full_int8 (weights and
activations, calibrated on real training mels), and wavegrad.json (`wavegrad_tf.runtime.Metadata`: features,
schedule, chunk sizes). Each file has one signature per chunk size, `frames_<n>`: mel [1, n, n_mels] and
noise [steps, 1, n * hop] -> audio [1, n * hop], sharing one set of weights. Every shape is static, so the
converter folds dilated convolutions into CONV_2D and the interpreter plans all memory in one arena per
signature; the noise is an input (the runner draws it), so every op runs in XNNPACK and output is reproducible.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS
VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")
# Full int8 quantizes the consistency projection too, and cannot hold it: spectral magnitudes span 1e-5 to 1e2,
# and TFLite's int8 division faults on a divisor that rounds to zero. It is exported without one.
FLOAT_PROJECTION_VARIANTS = ("float32", "float16", "dynamic_int8")
CHUNK_FRAMES = (80, 128, 256)


def define_flags():
    flags.DEFINE_string("model", None, "A training run's folder or a pretrained model's name.", required=True)
    flags.DEFINE_string("output", "exported/tflite", "Output folder.")
    flags.DEFINE_list("variants", None, f"Any of {', '.join(VARIANTS)}; default: all of them, but full_int8 only with "
                      "--consistency none (int8 cannot hold the projection).")
    flags.DEFINE_string("schedule", None, "Sampling schedule unrolled into the graph; default: the config's.")
    flags.DEFINE_list("chunk_frames", [str(n) for n in CHUNK_FRAMES], "Frame counts of the signatures: the runner "
                      "starts with the smallest (first audio sooner) and continues with the largest.")
    flags.DEFINE_string("calibration_audio", None, "Folder of recordings for full_int8 calibration; default: the "
                        "run's training audio.")
    cli.define_consistency_flags()


def signature(frames: int) -> str:
    return f"frames_{frames}"


def _saved_model(model, cfg, metadata, directory: str) -> str:
    import keras

    from export import graphs

    archive = keras.export.ExportArchive()
    archive.track(model)
    for frames in metadata.chunk_frames:
        archive.add_endpoint(signature(frames), graphs.on_device_function(model, cfg, metadata, frames))
    archive.write_out(directory, verbose=False)
    return directory


def _convert(saved_model_dir: str, keys, variant: str, calibration=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(keys))
    # Builtins only: the LiteRT interpreter cannot run Flex (SELECT_TF_OPS) graphs.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "full_int8":
        converter.representative_dataset = calibration
    return converter.convert()


def calibration_samples(model, cfg, metadata, audio_dir=None, per_size: int = 8):
    """(signature, inputs) pairs from real speech for full_int8: mels of each signature's length with the white
    noise the runner would draw (the graph shapes it by the prior), from `audio_dir` or the run's training audio."""
    import numpy as np

    from wavegrad_tf import runs
    from wavegrad_tf.audio import list_audio_files, load_audio
    from wavegrad_tf.mel import log_mel_spectrogram
    from wavegrad_tf.runtime import PositionalNoise

    files = list_audio_files(audio_dir, "--calibration_audio") if audio_dir else runs.training_files(model)
    mels = np.concatenate([log_mel_spectrogram(load_audio(f, cfg.audio.sample_rate), cfg.audio, use_tf=False)
                           for f in files[:40]])
    noise, hop, out = PositionalNoise(0), cfg.audio.hop_length, []
    for frames in metadata.chunk_frames:
        starts = np.linspace(0, len(mels) - frames, per_size).astype(int)
        out += [(signature(frames), {"mel": mels[None, s:s + frames],
                                     "noise": noise.per_step(metadata.iterations, s * hop, frames * hop)})
                for s in starts]
    return out


def export_tflite(model, output, variants=None, schedule=None, chunk_frames=CHUNK_FRAMES,
                  calibration_audio=None, consistency: dict | None = None) -> dict:
    """Writes the .tflite files and wavegrad.json; returns {variant: path}. `variants` default: every variant that
    can hold the config's consistency projection."""
    from export import check_replaceable, swap_in
    from wavegrad_tf.config import Consistency
    from wavegrad_tf.errors import UserError
    from wavegrad_tf.runtime import Metadata, Vocoder

    unknown = [v for v in variants or () if v not in VARIANTS]
    if unknown:
        raise UserError(f"--variants: {unknown} not among {VARIANTS}")
    output = Path(output)
    try:
        chunk_frames = tuple(sorted({int(n) for n in chunk_frames}))
    except (TypeError, ValueError):
        raise UserError(f"--chunk_frames {list(chunk_frames)}: expected whole numbers of frames") from None
    least = 2 * Vocoder.overlap_frames + 1
    if not chunk_frames or chunk_frames[0] < least:
        raise UserError(f"--chunk_frames {list(chunk_frames)}: expected sizes of at least {least} frames (the runner "
                        f"overlaps chunks by {Vocoder.overlap_frames})")
    check_replaceable(output)

    from wavegrad_tf import runs, schedules  # TensorFlow from here on

    cfg = runs.read_config(model)
    metadata = Metadata(audio=cfg.audio, betas=tuple(schedules.schedule_for(cfg, schedule=schedule)),
                        chunk_frames=chunk_frames, consistency=Consistency.of(cfg, **(consistency or {})))
    projected = metadata.consistency.kind != "none"
    variants = tuple(variants or (FLOAT_PROJECTION_VARIANTS if projected else VARIANTS))
    if projected and "full_int8" in variants:
        raise UserError(f"--variants full_int8: full int8 cannot hold the {metadata.consistency.kind} consistency "
                        "projection (spectral magnitudes span 1e-5 to 1e2); export it into a folder of its own with "
                        "--consistency none")
    _, network = runs.load_model(model)
    keys = [signature(n) for n in chunk_frames]
    # The folder is replaced whole: its files always come from one export (one schedule, one set of chunk sizes).
    with swap_in(output) as fresh, tempfile.TemporaryDirectory() as tmp:
        saved = _saved_model(network, cfg, metadata, f"{tmp}/sampler")
        samples = calibration_samples(model, cfg, metadata, calibration_audio) if "full_int8" in variants else []
        for variant in variants:
            (fresh / f"{variant}.tflite").write_bytes(_convert(saved, keys, variant, lambda: iter(samples)))
        metadata.save(fresh)
    return {variant: output / f"{variant}.tflite" for variant in variants}


def main(argv):
    del argv
    for name, path in export_tflite(FLAGS.model, FLAGS.output, FLAGS.variants, FLAGS.schedule, FLAGS.chunk_frames,
                                    FLAGS.calibration_audio, cli.consistency_flags()).items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
