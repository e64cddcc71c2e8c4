"""Vocode a corpus with Apache Beam (`wavegrad_tf.beam_lib`): the job of `infer --input MANY --output FOLDER`, on any
Beam runner. Flags this command does not define are Beam's pipeline options.

    pip install -e ".[beam]"
    python -m wavegrad_tf.beam --model asterisk-16k --input mels/ --output vocoded/ --seed 0 \\
        --runner DirectRunner --direct_num_workers 2 --direct_running_mode multi_processing
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS
KNOWN_ONLY = True  # the flags this command does not define are Beam's pipeline options


def define_flags():
    cli.define_model_flag()
    flags.DEFINE_string("input", None, "A folder (searched recursively), a glob, @files.txt, or a URL Beam reads "
                        "(gs://bucket/mels/**.npy).", required=True)
    flags.DEFINE_string("output", None, "A folder (or a URL Beam writes): the outputs mirror the inputs' relative "
                        "paths, beside manifest.jsonl.", required=True)
    cli.define_sampling_flags()
    cli.define_seed_flag(0)
    flags.DEFINE_integer("batch_size", None, "Mels vocoded in one call (runs, pretrained models, SavedModels); "
                         "default: as many as fill 1,600 frames.")
    flags.DEFINE_integer("threads", None, "Interpreter threads (.tflite) per worker.")
    flags.DEFINE_float("timeout", 60.0, "Seconds a TF Serving request may take.")


def main(argv):
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        from wavegrad_tf.errors import UserError

        raise UserError('the Beam job needs apache-beam: pip install -e ".[beam]"') from None
    from wavegrad_tf.beam_lib import MANIFEST, pipeline

    options = dict(threads=FLAGS.threads, timeout=FLAGS.timeout, **cli.sampling_options())
    with beam.Pipeline(options=PipelineOptions(argv[1:], save_main_session=False)) as root:
        pipeline(root, FLAGS.model, FLAGS.input, FLAGS.output, FLAGS.seed, FLAGS.batch_size, **options)
    print(f"wrote {FLAGS.output}/{MANIFEST}")


if __name__ == "__main__":
    cli.main(define_flags, main, KNOWN_ONLY)
