"""TFLite / LiteRT graphs of a trained model (`python -m export.tflite` is the command line): the sampler
unrolled, builtin ops only, batch 1, static shapes.

An export folder holds <variant>.tflite for float32, float16 (weights), dynamic_int8 (weights) and full_int8
(weights and activations, calibrated on real training mels), and wavegrad.json (`wavegrad_tf.runtime.Metadata`:
features, schedule, signature sizes). Each file has one signature per frame count, `frames_<n>`: mel
[1, n, n_mels] and noise [steps, 1, n * hop] -> audio [1, n * hop], sharing one set of weights. Every shape is
static, so the converter folds dilated convolutions into CONV_2D and the interpreter plans all memory in one arena
per signature; the white noise is an input (the runner draws it, the graph shapes it by the prior), so every op
runs in XNNPACK and output is reproducible.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Optional

from wavegrad_tf.errors import UserError
from wavegrad_tf.runs import Run

@dataclasses.dataclass(frozen=True)
class Variant:
    """One kind of .tflite file: how its weights (and activations) are stored, and whether it holds the sampler's
    consistency projection."""

    name: str
    weights: str  # float32, float16 or int8
    int8_activations: bool = False  # full integer quantization, calibrated on real mels
    # Full int8 quantizes the consistency projection too, and cannot hold it: spectral magnitudes span 1e-5 to 1e2,
    # and TFLite's int8 division faults on a divisor that rounds to zero. It is exported without one.
    holds_projection: bool = True

    @property
    def file(self) -> str:
        return f"{self.name}.tflite"


VARIANTS = {v.name: v for v in (Variant("float32", "float32"), Variant("float16", "float16"),
                                Variant("dynamic_int8", "int8"), Variant("full_int8", "int8", True, False))}
# One signature: each one used keeps its own arena, and Base's 10 s then peaked at 520 MB in 80- then 128-frame
# chunks, 436 MB in 128-frame ones, 338 MB in 96-frame ones (with the projection; docs/deployment.md). 96 frames
# keep a phone's 400 MB at 1.5 network passes per output frame (128: 1.33; 80: 1.67).
SIGNATURE_FRAMES = (96,)
# What an export folder may hold beside wavegrad.json: a folder holding anything else is not replaced.
OWNED = tuple(v.file for v in VARIANTS.values())


def signature(frames: int) -> str:
    return f"frames_{frames}"


def _saved_model(network, cfg, metadata, directory: str) -> str:
    import keras

    from wavegrad_tf.export import graphs

    archive = keras.export.ExportArchive()
    archive.track(network)
    for frames in metadata.signature_frames:
        archive.add_endpoint(signature(frames), graphs.on_device_function(network, cfg, metadata, frames))
    archive.write_out(directory, verbose=False)
    return directory


def _convert(saved_model_dir: str, keys, variant: Variant, calibration=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(keys))
    # Builtins only: the LiteRT interpreter cannot run Flex (SELECT_TF_OPS) graphs.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant.weights != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant.weights == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant.int8_activations:
        converter.representative_dataset = calibration
    return converter.convert()


def calibration_samples(run: Run, metadata, audio_dir=None, per_size: int = 8):
    """(signature, inputs) pairs from real speech for full_int8: mels of each signature's length with the white
    noise the runner would draw, from `audio_dir` or the run's training audio."""
    import numpy as np

    from wavegrad_tf.audio import list_audio_files, load_audio
    from wavegrad_tf.mel import log_mel_spectrogram
    from wavegrad_tf.runtime import PositionalNoise

    audio_cfg = metadata.audio
    files = list_audio_files(audio_dir, "--calibration_audio") if audio_dir else run.training_files()
    mels = np.concatenate([log_mel_spectrogram(load_audio(f, audio_cfg.sample_rate), audio_cfg, use_tf=False)
                           for f in files[:40]])
    noise, hop, out = PositionalNoise(0), audio_cfg.hop_length, []
    for frames in metadata.signature_frames:
        starts = np.linspace(0, len(mels) - frames, per_size).astype(int)
        out += [(signature(frames), {"mel": mels[None, s:s + frames],
                                     "noise": noise.per_step(metadata.iterations, s * hop, frames * hop)})
                for s in starts]
    return out


def planned_metadata(run, schedule=None, signature_frames=SIGNATURE_FRAMES, consistency: Optional[dict] = None):
    """The wavegrad.json an export of `run` with these settings writes (what a served copy must equal)."""
    from wavegrad_tf.runtime import Metadata, Vocoder

    run = Run.open(run)
    try:
        signature_frames = tuple(sorted({int(n) for n in signature_frames}))
    except (TypeError, ValueError):
        raise UserError(f"--signature_frames {list(signature_frames)}: expected whole numbers of frames") from None
    least = 2 * Vocoder.overlap_frames + 1
    if not signature_frames or signature_frames[0] < least:
        raise UserError(f"--signature_frames {list(signature_frames)}: expected sizes of at least {least} frames (the "
                        f"runner overlaps chunks by {Vocoder.overlap_frames})")
    return Metadata.plan(run.config, schedule, precision="float32", consistency=consistency,
                         signature_frames=signature_frames)


def export_tflite(run, output, variants=None, schedule=None, signature_frames=SIGNATURE_FRAMES,
                  calibration_audio=None, consistency: Optional[dict] = None, progress: bool = False) -> dict:
    """Writes the .tflite files and wavegrad.json into `output`; returns {variant: path}. Into an earlier export
    with the same settings the files go beside its others; an earlier export with other settings is replaced whole
    (a folder's files always come from one schedule and one set of signatures); a folder holding anything an export
    does not write is refused. `variants` default: every variant that can hold the config's consistency projection."""
    from wavegrad_tf.export import added_beside, check_replaceable, swap_in
    from wavegrad_tf.progress import bar as progress_bar
    from wavegrad_tf.runtime import Metadata
    from wavegrad_tf.runtime.metadata import FILENAME, MetadataError

    unknown = [v for v in variants or () if v not in VARIANTS]
    if unknown:
        raise UserError(f"--variants: {unknown} not among {list(VARIANTS)}")
    output = Path(os.path.abspath(output))
    held = check_replaceable(output, OWNED)
    run = Run.open(run)
    metadata = planned_metadata(run, schedule, signature_frames, consistency)
    projected = metadata.consistency.kind != "none"
    variants = [VARIANTS[v] for v in variants] if variants else [
        v for v in VARIANTS.values() if v.holds_projection or not projected]
    refused = [v.name for v in variants if projected and not v.holds_projection]
    if refused:
        raise UserError(f"--variants {','.join(refused)}: {refused[0].replace('_', ' ')} cannot hold the "
                        f"{metadata.consistency.kind} consistency projection (spectral magnitudes span 1e-5 to 1e2); "
                        "export it into a folder of its own with --consistency none")
    try:
        same = bool(held) and Metadata.load(output / FILENAME) == metadata
    except MetadataError:
        same = False
    from wavegrad_tf.model import load_network  # Keras: once every check has passed

    network = load_network(run)
    keys = [signature(n) for n in metadata.signature_frames]
    with (added_beside(output) if same else swap_in(output, OWNED)) as fresh:
        # The intermediate SavedModel lives in the partial folder: an export killed now leaves nothing elsewhere.
        saved = _saved_model(network, run.config, metadata, str(fresh / ".sampler"))
        calibrated = any(v.int8_activations for v in variants)
        samples = calibration_samples(run, metadata, calibration_audio) if calibrated else []
        for variant in progress_bar(variants, unit="variant", show=progress, desc="converting"):
            (fresh / variant.file).write_bytes(_convert(saved, keys, variant, lambda: iter(samples)))
        shutil.rmtree(saved)
        metadata.save(fresh)
    return {variant.name: output / variant.file for variant in variants}
