"""Package a training run as a pretrained model of this package:

    python -m wavegrad_tf.package --run runs/asterisk --name asterisk-16k --schedule runs/asterisk/search-6/schedule.yaml

Writes wavegrad_tf/pretrained/<name>/config.yaml and weights.npz (`wavegrad_tf.package_lib`), and prints the
float16 weights' error against the run's float32 average.
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("run", None, "The training run folder.", required=True)
    flags.DEFINE_string("name", None, "The pretrained model's name.", required=True)
    cli.define_schedule_flag()
    flags.DEFINE_enum("dtype", "float16", ["float16", "float32"], "Weight storage.")


def main(argv):
    del argv
    from wavegrad_tf import package_lib
    from wavegrad_tf.runs import Run

    result = package_lib.package(Run.open(FLAGS.run, "--run"), FLAGS.name, FLAGS.schedule, FLAGS.dtype)
    print(f"wrote {result['folder']}: weights {result['weights_mb']:.2f} MB ({FLAGS.dtype}); 6-step audio vs the "
          f"float32 average on the same noise: relative L2 {result['relative_error']:.2e}")


if __name__ == "__main__":
    cli.main(define_flags, main)
