"""A trained model as a TF Serving model, <output>/<model_name>/<version>/ (`python -m export.saved_model` is the
command line).

Signatures (method tensorflow/serving/predict):
  serving_default    mel [batch, frames, n_mels] float32, lengths [batch] int32 (frames of each item)
                     -> audio [batch, frames * hop], audio_lengths [batch]; the whole sampler in the graph
  vocode_with_noise  the same plus noise [steps, batch, frames * hop], for reproducible output
  mel_from_audio     audio [batch, samples] float32 at the model's rate -> mel [batch, frames, n_mels]
  metadata           request int32 scalar (ignored) -> json: what assets.extra/wavegrad.json holds
and assets.extra/: tf_serving_warmup_requests, and wavegrad.json (feature settings, schedule, frame limit).
Needs `pip install --no-deps tensorflow-serving-api==2.21.0`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from wavegrad_tf import hardware
from wavegrad_tf.errors import UserError
from wavegrad_tf.runs import Run

WARMUP_FRAMES = (50, 400)


def export_saved_model(run, output, model_name: str = "wavegrad", version: int = 1, schedule=None,
                       max_frames=None, precision: str = "auto", consistency: Optional[dict] = None) -> Path:
    """Writes the SavedModel of a run or pretrained model (a `Run`, or what names one) and returns its version
    folder. The arguments are checked before TensorFlow loads."""
    from wavegrad_tf.export import swap_in
    from wavegrad_tf.runtime import Vocoder

    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 2 ** 63:
        raise UserError(f"--version {version}: expected a whole number >= 0 (TF Serving's version folders)")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", str(model_name)) or model_name in (".", ".."):
        raise UserError(f"--model_name {model_name!r}: expected a plain folder name (letters, digits, _ . -), "
                        f"written under --output")
    least = 2 * Vocoder.overlap_frames + 1
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < least):
        raise UserError(f"--max_frames {max_frames}: expected at least {least} (clients vocode in chunks that overlap "
                        f"by {Vocoder.overlap_frames} frames)")
    path = Path(output) / model_name / str(version)
    if path.exists():
        raise UserError(f"{path} exists: pick a new --version (TF Serving serves the highest)")

    import keras

    from wavegrad_tf.export import graphs
    from wavegrad_tf.model import load_network
    from wavegrad_tf.runtime import DEFAULT_MAX_FRAMES, Metadata

    run = Run.open(run)
    cfg = run.config
    metadata = Metadata.plan(cfg, schedule, precision=precision, consistency=consistency,
                             max_frames=max_frames or DEFAULT_MAX_FRAMES)
    network = load_network(run, dtype=hardware.KERAS_POLICIES[metadata.precision])
    archive = keras.export.ExportArchive()
    archive.track(network)
    for name, fn in graphs.serving_functions(network, cfg, metadata).items():
        archive.add_endpoint(name, fn)
    with swap_in(path) as fresh:  # TF Serving never sees a version folder before it is whole
        archive.write_out(str(fresh), verbose=False)
        write_warmup_requests(fresh, model_name, cfg, metadata.max_frames)
        metadata.save(fresh / "assets.extra")
    return path


def write_warmup_requests(path: Path, model_name: str, cfg, max_frames: int) -> Path:
    """assets.extra/tf_serving_warmup_requests: Predict calls TF Serving replays at load, so the first
    real request does not pay for graph initialisation."""
    import numpy as np
    import tensorflow as tf

    from wavegrad_tf import mel

    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError:
        raise ImportError("warm-up requests need the TF Serving protos: "
                          "pip install --no-deps tensorflow-serving-api==2.21.0") from None
    out = path / "assets.extra" / "tf_serving_warmup_requests"
    out.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(out)) as writer:
        for frames in sorted({min(f, max_frames) for f in WARMUP_FRAMES}):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = "serving_default"
            request.inputs["mel"].CopyFrom(tf.make_tensor_proto(
                np.full((1, frames, cfg.audio.n_mels), mel.silence(cfg.audio), np.float32)))
            request.inputs["lengths"].CopyFrom(tf.make_tensor_proto(np.array([frames], np.int32)))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return out
