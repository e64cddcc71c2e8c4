"""Evaluate a vocoder on real recordings (`wavegrad_tf.evaluate_lib`): each clip is vocoded from its own mel and
scored against itself, beside Griffin-Lim.

    python -m wavegrad_tf.evaluate --model runs/demo --output runs/demo/eval
    python -m wavegrad_tf.evaluate --model exported/tflite/float16.tflite --audio_dir my_clips --output eval_f16

Without --audio_dir a training run is scored on the clips it held out of training (data_split.json).
A metric whose package is missing is reported as missing (pip install -e ".[eval]" adds them).
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_flag()
    flags.DEFINE_string("audio_dir", None, "Folder of recordings (searched recursively); default: the training "
                        "run's held-out clips.")
    flags.DEFINE_string("output", None, "Folder for the results.", required=True)
    cli.define_sampling_flags()
    cli.define_seed_flag(0)
    flags.DEFINE_integer("max_files", None, "Score at most this many clips (sorted by path).")
    flags.DEFINE_integer("griffin_lim_iterations", 32, "Griffin-Lim iterations for the baseline (0: none).")
    flags.DEFINE_list("metrics", None, "Subset of metrics (default: all).")
    flags.DEFINE_integer("plot_files", 3, "Clips shown in spectrograms.png.")
    flags.DEFINE_enum("mel", "exact", ["exact", "tts_like"], "What every vocoder is given: the recording's own mel, or "
                      "a TTS model's kind of mel (smoothed, with errors, shifted half a frame: wavegrad_tf.tts_like).")


def main(argv):
    del argv
    from wavegrad_tf.evaluate_lib import evaluate, summary_markdown

    results = evaluate(cli.model_source(), FLAGS.output, FLAGS.audio_dir, FLAGS.seed, FLAGS.max_files,
                       FLAGS.griffin_lim_iterations, FLAGS.metrics, FLAGS.plot_files, FLAGS.mel, progress=True,
                       **cli.sampling_options())
    print(summary_markdown(results))
    print(f"wrote {FLAGS.output}/results.json, results.csv, summary.md, spectrograms.png, audio/")


if __name__ == "__main__":
    cli.main(define_flags, main)
