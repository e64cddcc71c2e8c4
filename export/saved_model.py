"""Export a trained model as a TF Serving model (`export.saved_model_lib`): <output>/<model_name>/<version>/.

    python -m export.saved_model --model runs/demo --output exported --model_name wavegrad --version 1
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_flag(kinds=("run",))
    flags.DEFINE_string("output", "exported", "Model base path (TF Serving's --model_base_path parent).")
    flags.DEFINE_string("model_name", "wavegrad", "Model name: the folder under --output.")
    flags.DEFINE_integer("version", 1, "Version folder number.")
    cli.define_schedule_flag()
    flags.DEFINE_integer("max_frames", None, "Largest mel frame count a request may have.")
    cli.define_precision_flag()
    cli.define_consistency_flags()


def main(argv):
    del argv
    from wavegrad_tf.export.saved_model_lib import export_saved_model

    path = export_saved_model(cli.model_source(kinds=("run",)).run, FLAGS.output, FLAGS.model_name, FLAGS.version,
                              FLAGS.schedule, FLAGS.max_frames, FLAGS.precision, cli.consistency_flags())
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.main(define_flags, main)
