"""Export a trained run as a TF Serving model: <output>/<model_name>/<version>/.

    python -m export.saved_model --model_dir runs/demo --output exported --model_name wavegrad --version 1

Signatures (method tensorflow/serving/predict):
  serving_default    mel [batch, frames, n_mels] float32, lengths [batch] int32 (frames of each item)
                     -> audio [batch, frames * hop], audio_lengths [batch]; the whole sampler in the graph
  vocode_with_noise  the same plus noise [steps, batch, frames * hop], for reproducible output
  mel_from_audio     audio [batch, samples] float32 at the model's rate -> mel [batch, frames, n_mels]
"""

from __future__ import annotations

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
    functions = serving.serving_functions(model, cfg, betas, max_frames or serving.DEFAULT_MAX_FRAMES)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in functions.items():
        archive.add_endpoint(name, fn)
    path = Path(output) / model_name / str(version)
    if path.exists():
        raise FileExistsError(f"{path} exists: pick a new --version (TF Serving serves the highest)")
    archive.write_out(str(path), verbose=False)
    return path


def main(argv):
    del argv
    path = export_saved_model(FLAGS.model_dir, FLAGS.output, FLAGS.model_name, FLAGS.version, FLAGS.schedule,
                              FLAGS.max_frames)
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    app.run(main)
