"""Package a training run as a pretrained model of this package: its config (with the searched schedule as the
inference schedule) and its averaged weights alone, in float16 by default (--dtype), with the error that storage costs.

    python -m wavegrad_tf.pretrained.package --run runs/asterisk --name asterisk-16k \
        --schedule runs/asterisk/search-6/schedule.yaml

Writes wavegrad_tf/pretrained/<name>/config.yaml and weights.npz, and prints the float16 weights' error:
the relative L2 distance of their 6-step audio to the float32 weights' on the same clip, seed and noise.
The model card (README.md beside them) is written by hand from `evaluate`'s tables.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("run", None, "The training run folder.", required=True)
    flags.DEFINE_string("name", None, "The pretrained model's name.", required=True)
    flags.DEFINE_string("schedule", None, "Inference schedule (a schedule_search schedule.yaml or a preset).")
    flags.DEFINE_enum("dtype", "float16", ["float16", "float32"], "Weight storage.")


def package(run, name: str, schedule=None, dtype: str = "float16") -> dict:
    import numpy as np

    from wavegrad_tf import mel, pretrained, runs, schedules
    from wavegrad_tf.audio import DEMO_CORPUS, list_audio_files, load_audio
    from wavegrad_tf.vocoders import load_vocoder

    cfg = runs.read_config(run)
    if schedule is not None:
        betas = [float(b) for b in schedules.get_schedule(schedule)]
        cfg = dataclasses.replace(cfg, name=name, diffusion=dataclasses.replace(cfg.diffusion,
                                                                                inference_schedule=betas))
    folder = pretrained.DIR / name
    folder.mkdir(exist_ok=True)
    cfg.save(folder / "config.yaml")
    runs.save_weights(run, folder / runs.WEIGHTS, dtype)
    # The stored weights against the run's float32 average, on a bundled clip, the same noise.
    clip = load_audio(list_audio_files(DEMO_CORPUS)[0], cfg.audio.sample_rate)
    features = mel.log_mel_spectrogram(clip, cfg.audio, use_tf=False)
    with tempfile.TemporaryDirectory() as tmp:
        reference_cfg = Path(tmp) / "config.yaml"
        cfg.save(reference_cfg)
        (Path(tmp) / "checkpoints").symlink_to(Path(run).resolve() / "checkpoints")
        reference = load_vocoder(tmp).vocode(features, seed=0)
    stored = load_vocoder(name).vocode(features, seed=0)
    error = float(np.linalg.norm(stored - reference) / np.linalg.norm(reference))
    size = (folder / runs.WEIGHTS).stat().st_size
    return {"folder": str(folder), "weights_mb": size / 1e6, "relative_error": error}


def main(argv):
    del argv
    result = package(FLAGS.run, FLAGS.name, FLAGS.schedule, FLAGS.dtype)
    print(f"wrote {result['folder']}: weights {result['weights_mb']:.2f} MB ({FLAGS.dtype}); 6-step audio vs the "
          f"float32 average on the same noise: relative L2 {result['relative_error']:.2e}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run(main)
