"""The quick start: fine-tune the pretrained model on the bundled speech, then vocode the clips it held out.

    python -m wavegrad_tf.demo [--model_dir runs/demo] [--steps 150] [--from_scratch]

Writes <model_dir>/demo_original.wav, demo_pretrained.wav, demo_vocoded.wav (the first clip) and
demo_spectrograms.png (every clip); `wavegrad_tf.demo_lib` does the work. --from_scratch trains the `demo`
config from random weights instead (1,500 steps).
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", "runs/demo", "Where the demo run goes (a finished run is reused).")
    flags.DEFINE_integer("steps", None, "Training steps; default: 150 fine-tuning (5 minutes on 2 cores of a CPU "
                         "without bfloat16), 1500 from scratch.")
    flags.DEFINE_bool("from_scratch", False, "Train the demo config from random weights instead of fine-tuning.")
    flags.DEFINE_string("pretrained", "asterisk-16k", "The pretrained model to fine-tune.")
    cli.define_seed_flag(0)


def main(argv):
    del argv
    from wavegrad_tf.demo_lib import quick_start

    quick_start(FLAGS.model_dir, FLAGS.steps, FLAGS.from_scratch, FLAGS.pretrained, FLAGS.seed)


if __name__ == "__main__":
    cli.main(define_flags, main)
