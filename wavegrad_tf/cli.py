"""What every command-line tool shares: a user error is one line on stderr and exit status 2 (a traceback
only with --verbose), and so is a file the machine refuses (disk full, read-only folder, no permission);
Ctrl-C or SIGTERM is one line and status 130, after the tool's cleanup ran (what was saved was said before);
anything else is an internal error and keeps its traceback."""

from __future__ import annotations

import errno
import signal
import sys

from absl import app, flags

from wavegrad_tf.errors import UserError

flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")


# Errors of the machine, not of the code: a full disk, a read-only or forbidden folder.
ENVIRONMENT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _terminated(signum, frame):
    raise KeyboardInterrupt  # so `finally` blocks remove partial outputs, as on Ctrl-C


def run(main) -> None:
    """absl's app.run(main), with user errors reported as one line."""

    def guarded(argv):
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
            print(f"error: {e.filename or 'a file'}: {e.strerror}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            if flags.FLAGS.verbose:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(guarded)


def define_consistency_flags() -> None:
    """--consistency, --consistency_iterations, --consistency_steps: the sampler's projection (for training runs
    and exporters; an export has its own baked in)."""
    flags.DEFINE_enum("consistency", None, ["none", "mel", "gla", "gla_once"], "What the sampler makes its estimate "
                      "consistent with: mel (the output's band energies rescaled to the mel), gla (GLA-Grad: "
                      "Griffin-Lim projections in the first steps), gla_once (GLA-Grad++: one projection), none; "
                      "default: the model's config (diffusion.consistency).")
    flags.DEFINE_integer("consistency_iterations", None, "Projection iterations; default: the config's, else 8 for "
                         "mel and 32 for gla.")
    flags.DEFINE_integer("consistency_steps", None, "gla, gla_once: how many of the first steps; default: the config's.")


def consistency_flags() -> dict:
    """The consistency flags given, as `load_vocoder`'s and the exporters' `consistency` argument."""
    f = flags.FLAGS
    return {"kind": f.consistency, "iterations": f.consistency_iterations, "steps": f.consistency_steps}
