"""Build the multi-speaker corpus of the pretrained model from Debian's Asterisk prompt packages
(`wavegrad_tf.asterisk_corpus_lib`).

    pip install -e ".[corpus]"      # PyAV: its wheel carries the FFmpeg G.722 decoder
    python -m wavegrad_tf.asterisk_corpus --output corpora/asterisk

Needs the network (apt-get download) once; training never does.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    from wavegrad_tf.asterisk_corpus_lib import VOICES

    flags.DEFINE_string("output", None, "Corpus folder to write.", required=True)
    flags.DEFINE_list("languages", list(VOICES), f"Any of {', '.join(VOICES)}.")
    flags.DEFINE_string("held_out", "allison", "The speaker kept out of training.")
    flags.DEFINE_string("debs", None, "Folder of already downloaded .deb files (default: apt-get download).")


def main(argv):
    del argv
    from wavegrad_tf.asterisk_corpus_lib import VOICES, build
    from wavegrad_tf.errors import UserError

    unknown = [lang for lang in FLAGS.languages if lang not in VOICES]
    if unknown:
        raise UserError(f"--languages: unknown {unknown}; expected any of {list(VOICES)}")
    seconds = build(Path(FLAGS.output), FLAGS.languages, FLAGS.held_out, FLAGS.debs and Path(FLAGS.debs))
    print(", ".join(f"{s}: {t / 3600:.2f} h" for s, t in sorted(seconds.items()))
          + f"\nwrote {FLAGS.output}/ATTRIBUTION.md")


if __name__ == "__main__":
    cli.main(define_flags, main)
