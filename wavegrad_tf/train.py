"""Train WaveGrad: python -m wavegrad_tf.train --config demo --model_dir runs/demo [--data_dir DIR] [--steps N].

With no --data_dir, trains on the bundled demo corpus. Config fields can be overridden, e.g.
--override train.batch_size=8 --override diffusion.continuous=false. --init_from starts from the weights of
another run or a pretrained model (fine-tuning); its config is the default then, and only train.* may differ.
The work is `wavegrad_tf.train_lib`: a plan, then its execution.
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("config", None, "Config preset (base, large, ljspeech, demo) or a YAML file; default: demo, "
                        "or the --init_from model's config.")
    flags.DEFINE_string("init_from", None, "Start from the averaged weights of this run folder or pretrained model "
                        "(the weight average starts there too, without a decay ramp: train.ema_ramp=false).")
    flags.DEFINE_string("data_dir", None, "Folder of audio (wav/flac/ogg) or with an LJSpeech metadata.csv; "
                        "default: the bundled demo corpus.")
    flags.DEFINE_string("model_dir", None, "The run folder: its config, checkpoints and TensorBoard logs.", required=True)
    flags.DEFINE_integer("steps", 1000, "Train until this global step (a resumed run continues to it).")
    flags.DEFINE_multi_string("override", [], "Config override section.key=value (repeatable).")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.")
    flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
    flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into this many logical devices (try mirrored on a laptop).")
    flags.DEFINE_string("cache_dir", None, "Decoded-audio cache; default: <model_dir>/audio_cache.")


def main(argv):
    del argv
    from wavegrad_tf import train_lib

    plan = train_lib.plan(FLAGS.config, FLAGS.model_dir, FLAGS.steps, FLAGS.data_dir, FLAGS.override, FLAGS.strategy,
                          FLAGS.tpu, FLAGS.cache_dir, FLAGS.init_from, FLAGS.cpu_replicas)
    if FLAGS.cpu_replicas:  # before any op, after the plan (which only lists devices)
        from wavegrad_tf.trainer import split_cpu

        split_cpu(FLAGS.cpu_replicas)
    train_lib.execute(plan)


if __name__ == "__main__":
    cli.main(define_flags, main)
