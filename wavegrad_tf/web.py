"""Vocode in a web browser, on your own device: python -m wavegrad_tf.web --model asterisk-16k

Exports a run's or a pretrained model's float16 TFLite file if needed (once, into --output), or takes a .tflite
file, serves the page of web/ with it on localhost and prints the address to open (`wavegrad_tf.web_lib`).
Needs `npm ci` in web/ once (LiteRT.js).
"""

from __future__ import annotations

import time

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    from wavegrad_tf.export.tflite_lib import VARIANTS

    cli.define_model_flag(kinds=("run", "tflite"))
    flags.DEFINE_enum("variant", "float16", list(VARIANTS), "Which TFLite variant a run is exported as for the page.")
    flags.DEFINE_string("output", None, "Where a run's export goes; default: exported/web/<model name>.")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
    flags.DEFINE_integer("port", 8000, "Port to listen on (0: any free one).")
    flags.DEFINE_list("allowed_hosts", [], "Host names requests may name besides --host and the loopback names "
                      "(a name this machine is reached by, when --host is 0.0.0.0).")


def main(argv):
    del argv
    from wavegrad_tf import web_lib

    web_lib.check_web_dir()
    web_lib.check_port(FLAGS.port)
    model = web_lib.model_file(cli.model_source(kinds=("run", "tflite")), FLAGS.variant, FLAGS.output)
    server = web_lib.serve(model, FLAGS.host, FLAGS.port, allowed_hosts=FLAGS.allowed_hosts)
    print(f"serving {web_lib.describe(model)}\nopen {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.shutdown()


if __name__ == "__main__":
    cli.main(define_flags, main)
