"""Vocode a mel or resynthesise a recording with any model: python -m wavegrad_tf.infer --model M --input I --output O.

--model is a training run folder, a pretrained name, a SavedModel folder, a .tflite file or a TF Serving
URL (`wavegrad_tf.vocoders`); the last two need no TensorFlow. --input is a .npy log-mel [frames, n_mels]
(e.g. from a TTS model, with the model's feature settings) or an audio file, analysed with the model's own
front end. Input of any length is streamed to the output (`wavegrad_tf.infer_lib`).

A whole corpus in one process: --input a folder (searched recursively), a glob or @files.txt, --output a folder;
the outputs mirror the inputs' relative paths, outputs already there are skipped, a failed input is reported and
skipped, and <output>/report.json sums it up (`wavegrad_tf.corpus`).
"""

from __future__ import annotations

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_flag()
    flags.DEFINE_string("input", None, "A .npy log-mel [frames, n_mels] or a wav/flac/ogg file; or many: a folder, a "
                        "glob ('mels/**/*.npy') or @files.txt (a path per line).", required=True)
    flags.DEFINE_string("output", None, "Output wav/flac/ogg path; a folder for many inputs.", required=True)
    cli.define_sampling_flags()
    cli.define_seed_flag()
    flags.DEFINE_integer("chunk_frames", None, "Mel frames vocoded at a time; default: the backend's.")
    flags.DEFINE_integer("threads", None, "Interpreter threads (.tflite); default: the CPUs this process may use.")
    flags.DEFINE_float("timeout", 60.0, "Seconds a TF Serving request may take before infer gives up.")
    flags.DEFINE_integer("batch_size", None, "Many inputs: mels vocoded in one call by a run, a pretrained model or a "
                         "SavedModel; default: as many as fill 1,600 frames.")


def main(argv):
    del argv
    from wavegrad_tf import corpus
    from wavegrad_tf.infer_lib import vocode_corpus, vocode_file

    options = dict(threads=FLAGS.threads, timeout=FLAGS.timeout, **cli.sampling_options())
    if corpus.is_corpus(FLAGS.input):
        report = vocode_corpus(cli.model_source(), FLAGS.input, FLAGS.output, FLAGS.seed, FLAGS.batch_size,
                               FLAGS.chunk_frames, **options)
        print(corpus.summary(report))
        return
    result = vocode_file(cli.model_source(), FLAGS.input, FLAGS.output, FLAGS.seed, FLAGS.chunk_frames, **options)
    print(f"wrote {result['output']}: {result['seconds']:.2f} s, {result['iterations']} iterations, "
          f"{result['vocoder']}")


if __name__ == "__main__":
    cli.main(define_flags, main)
