"""What every command-line tool shares: a user error is one line on stderr and exit status 2 (a traceback
only with --verbose), and so is a file the machine refuses (disk full, read-only folder, no permission);
Ctrl-C or SIGTERM is one line and status 130, after the tool's cleanup ran (what was saved was said before);
anything else is an internal error and keeps its traceback."""

from __future__ import annotations

import errno
import logging as std_logging
import signal
import sys
from typing import Optional

from absl import app, flags, logging

from wavegrad_tf.errors import UserError

flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")


# Errors of the machine, not of the code: a full disk, a read-only or forbidden folder.
ENVIRONMENT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _terminated(signum, frame):
    raise KeyboardInterrupt  # so `finally` blocks remove partial outputs, as on Ctrl-C


# The console scripts (setup.cfg's entry points): each the same as `python -m MODULE`.
COMMANDS = {"wavegrad-train": "wavegrad_tf.train", "wavegrad-infer": "wavegrad_tf.infer",
            "wavegrad-evaluate": "wavegrad_tf.evaluate", "wavegrad-schedule-search": "wavegrad_tf.schedule_search",
            "wavegrad-package": "wavegrad_tf.package", "wavegrad-demo": "wavegrad_tf.demo", "wavegrad-web": "wavegrad_tf.web",
            "wavegrad-asterisk-corpus": "wavegrad_tf.asterisk_corpus", "wavegrad-beam": "wavegrad_tf.beam",
            "wavegrad-export-saved-model": "wavegrad_tf.export.saved_model",
            "wavegrad-export-tflite": "wavegrad_tf.export.tflite"}


def entry() -> None:
    """What every console script runs: the command its name stands for in COMMANDS."""
    import importlib
    import os

    module = importlib.import_module(COMMANDS[os.path.basename(sys.argv[0])])
    main(module.define_flags, module.main, getattr(module, "KNOWN_ONLY", False))


def main(define_flags, main_fn, known_only: bool = False) -> None:
    """What a command line's `if __name__ == "__main__":` does: TensorFlow's C++ logs quiet (its INFO banners, and
    oneDNN's ERROR-level notes about instructions) unless --verbose or the user's own TF_CPP_MIN_LOG_LEVEL, its
    flags, `run`. `known_only`: flags the tool does not define are left in argv for it (Beam's pipeline options)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if "--verbose" in sys.argv else "3")
    define_flags()
    run(main_fn, known_only)


class _Short(std_logging.Formatter):
    """A library warning as one line: "warning: ..." (absl's prefix of date, thread and source is for --verbose)."""

    def format(self, record) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def quiet_logs() -> None:
    """Library modules log through absl; a command shows their warnings and errors, short, and their INFO lines
    (what the command prints itself, or details) only with --verbose."""
    if flags.FLAGS.verbose:
        logging.set_verbosity(logging.INFO)
        return
    logging.set_verbosity(logging.WARNING)
    logging.get_absl_handler().setFormatter(_Short())
    for name in ("apache_beam", "matplotlib"):  # chatty at INFO through the root logger
        std_logging.getLogger(name).setLevel(std_logging.WARNING)


def run(main, known_only: bool = False) -> None:
    """absl's app.run(main), with user errors reported as one line, and the shared flags a tool defined here listed
    in its --help beside its own."""
    # A console script's main module is its launcher, not the command's: list the command's flags as its own too.
    for module in (__name__, main.__module__):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def guarded(argv):
        quiet_logs()
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # training installs its own stop-after-this-step
            signal.signal(signal.SIGTERM, _terminated)
        try:
            return main(argv)
        except (UserError, FileExistsError) as e:
            if flags.FLAGS.verbose:
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except OSError as e:
            if e.errno not in ENVIRONMENT_ERRORS or flags.FLAGS.verbose:
                raise
            print(f"error: {e.filename or _output() or 'a file'}: {e.strerror}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            if flags.FLAGS.verbose:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(guarded, flags_parser=(lambda argv: flags.FLAGS(argv, known_only=True)) if known_only else
            app.parse_flags_with_usage)


def _output() -> Optional[str]:
    """What the tool was writing, for an error of the machine that does not name its file (numpy, TensorFlow)."""
    for name in ("output", "model_dir"):
        if name in flags.FLAGS and flags.FLAGS[name].value:
            return f"--{name} {flags.FLAGS[name].value}"
    return None


# -- flags more than one tool takes: defined here once, with one help text each ---------------------------------
def define_model_flag(kinds: Optional[tuple] = None) -> None:
    """--model; `kinds` narrows what it may name (the exporters take training runs only)."""
    from wavegrad_tf.vocoders import model_forms

    flags.DEFINE_string("model", None, f"What to vocode with: {model_forms(kinds)}.", required=True)


def model_source(kinds: Optional[tuple] = None):
    """--model resolved, once (`wavegrad_tf.vocoders.resolve`)."""
    from wavegrad_tf.vocoders import resolve

    return resolve(flags.FLAGS.model, kinds=kinds)


def define_schedule_flag() -> None:
    flags.DEFINE_string("schedule", None, "Sampling schedule: a preset (manual-6, fibonacci-25, linear-50, linear-1000) "
                        "or a file of betas (.txt one per line, .npy, or YAML betas: [...], such as schedule_search's "
                        "schedule.yaml); default: the config's inference_schedule. Exports bake it into the graph.")


def define_iterations_flag(default: Optional[int] = None) -> None:
    flags.DEFINE_integer("iterations", default, "Sampling steps N: the preset schedule with N steps (schedule_search: "
                         "the N of the schedules it searches).")


def define_precision_flag() -> None:
    from wavegrad_tf.hardware import VOCODING_PRECISIONS

    flags.DEFINE_enum("precision", "auto", list(VOCODING_PRECISIONS), "Compute precision of the sampler: auto is "
                      "float32 on every machine (sampling compounds rounding); bfloat16 is faster only where the CPU "
                      "computes it (AVX512-BF16, AMX, aarch64 BF16), at some quality.")


def define_seed_flag(default: Optional[int] = None) -> None:
    flags.DEFINE_integer("seed", default, "Noise seed: the same seed gives the same audio from every backend.")


def define_sampling_flags() -> None:
    """--schedule, --iterations, --precision and the consistency flags: how a training run samples (an export has
    them baked in)."""
    define_schedule_flag()
    define_iterations_flag()
    define_precision_flag()
    define_consistency_flags()


def sampling_options() -> dict:
    """The sampling flags given, as `ModelSource.load`'s options: None where a flag was left to the model."""
    f = flags.FLAGS
    return {"schedule": f.schedule, "iterations": f.iterations, "precision": None if f.precision == "auto" else
            f.precision, "consistency": consistency_flags()}


def define_consistency_flags() -> None:
    """--consistency, --consistency_iterations, --consistency_steps: the sampler's projection (for training runs
    and exporters; an export has its own baked in)."""
    from wavegrad_tf.config import Consistency

    flags.DEFINE_enum("consistency", None, list(Consistency.KINDS), "What the sampler makes its estimate consistent "
                      "with: " + "; ".join(f"{name} ({kind.help})" for name, kind in Consistency.KINDS.items())
                      + "; default: the model's config (diffusion.consistency), but none for .npy mels "
                      "(a TTS model's) in infer and beam.")
    flags.DEFINE_integer("consistency_iterations", None, "Projection iterations; default: the config's, else 8 for "
                         "mel and 32 for gla.")
    flags.DEFINE_integer("consistency_steps", None, "gla, gla_once: how many of the first steps; default: the config's.")


def consistency_flags() -> Optional[dict]:
    """The consistency flags given (the parts of the config's to replace), or None: `ModelSource.load`'s and the
    exporters' `consistency` argument."""
    f = flags.FLAGS
    given = {"kind": f.consistency, "iterations": f.consistency_iterations, "steps": f.consistency_steps}
    return {k: v for k, v in given.items() if v is not None} or None
