"""What every command-line tool shares: a user error is one line on stderr and exit status 2 (a traceback
only with --verbose); Ctrl-C is one line and status 130 (what was saved was said before); anything else is
an internal error and keeps its traceback."""

from __future__ import annotations

import sys

from absl import app, flags

from wavegrad_tf.errors import UserError

flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")


def run(main) -> None:
    """absl's app.run(main), with user errors reported as one line."""

    def guarded(argv):
        try:
            return main(argv)
        except (UserError, FileExistsError) as e:
            if flags.FLAGS.verbose:
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            if flags.FLAGS.verbose:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(guarded)
