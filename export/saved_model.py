"""Export a trained run as a TF Serving model: <output>/<model_name>/<version>/.

    python -m export.saved_model --model_dir runs/demo --output exported --model_name wavegrad --version 1

Signatures (method tensorflow/serving/predict):
  serving_default    mel [batch, frames, n_mels] float32, lengths [batch] int32 (frames of each item)
                     -> audio [batch, frames * hop], audio_lengths [batch]; the whole sampler in the graph
  vocode_with_noise  the same plus noise [steps, batch, frames * hop], for reproducible output
  mel_from_audio     audio [batch, samples] float32 at the model's rate -> mel [batch, frames, n_mels]
and assets.extra/: tf_serving_warmup_requests, and wavegrad.json (feature settings and schedule, for
wavegrad_tf.vocoders and the evaluator; TF Serving ignores it).
Needs `pip install --no-deps tensorflow-serving-api==2.21.0`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a script."""
    flags.DEFINE_string("model_dir", None, "A training run's folder.", required=True)
    flags.DEFINE_string("output", "exported", "Model base path (TF Serving's --model_base_path parent).")
    flags.DEFINE_string("model_name", "wavegrad", "Model name: the folder under --output.")
    flags.DEFINE_integer("version", 1, "Version folder number.")
    flags.DEFINE_string("schedule", None, "Sampling schedule baked into the graph; default: the config's.")
    flags.DEFINE_integer("max_frames", None, "Largest mel frame count a request may have.")


def export_saved_model(model_dir, output, model_name: str = "wavegrad", version: int = 1, schedule=None,
                       max_frames=None) -> Path:
    """Writes the SavedModel and returns its version folder."""
    import keras

    from wavegrad_tf import infer, serving

    cfg, model = infer.load_model(model_dir)
    betas = infer.schedule_for(cfg, schedule=schedule)
    max_frames = max_frames or serving.DEFAULT_MAX_FRAMES
    functions = serving.serving_functions(model, cfg, betas, max_frames)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in functions.items():
        archive.add_endpoint(name, fn)
    path = Path(output) / model_name / str(version)
    if path.exists():
        raise FileExistsError(f"{path} exists: pick a new --version (TF Serving serves the highest)")
    archive.write_out(str(path), verbose=False)
    write_warmup_requests(path, model_name, cfg, max_frames)
    (path / "assets.extra" / "wavegrad.json").write_text(json.dumps(serving.metadata(cfg, betas), indent=1))
    return path


WARMUP_FRAMES = (50, 400)


def write_warmup_requests(path: Path, model_name: str, cfg, max_frames: int) -> Path:
    """assets.extra/tf_serving_warmup_requests: Predict calls TF Serving replays at load, so the first
    real request does not pay for graph initialisation."""
    import numpy as np
    import tensorflow as tf

    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError:
        raise ImportError("warm-up requests need the TF Serving protos: "
                          "pip install --no-deps tensorflow-serving-api==2.21.0") from None
    out = path / "assets.extra" / "tf_serving_warmup_requests"
    out.parent.mkdir(exist_ok=True)
    silence = float(np.log(cfg.audio.log_floor) - cfg.audio.mel_offset) / cfg.audio.mel_scale
    with tf.io.TFRecordWriter(str(out)) as writer:
        for frames in sorted({min(f, max_frames) for f in WARMUP_FRAMES}):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = "serving_default"
            request.inputs["mel"].CopyFrom(tf.make_tensor_proto(
                np.full((1, frames, cfg.audio.n_mels), silence, np.float32)))
            request.inputs["lengths"].CopyFrom(tf.make_tensor_proto(np.array([frames], np.int32)))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return out


def main(argv):
    del argv
    path = export_saved_model(FLAGS.model_dir, FLAGS.output, FLAGS.model_name, FLAGS.version, FLAGS.schedule,
                              FLAGS.max_frames)
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    app.run(main)
