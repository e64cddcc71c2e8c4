"""Search an N-step noise schedule on the paper's grid, scored by the log-mel L1 of vocoded validation clips
(`wavegrad_tf.schedule_search_lib`):

    python -m wavegrad_tf.schedule_search --model runs/demo --iterations 6 --output runs/demo/search-6

<output>/schedule.yaml always holds the best so far; --schedule of infer, evaluate and the exporters accepts it.
A stopped search continues where it was when rerun with the same --output.
"""

from __future__ import annotations

import time

from absl import flags

from wavegrad_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    cli.define_model_flag(kinds=("run",))
    cli.define_iterations_flag(6)
    flags.DEFINE_string("output", None, "Folder for scores.jsonl, search.json and schedule.yaml.", required=True)
    flags.DEFINE_string("audio_dir", None, "Validation recordings; default: the run's held-out clips.")
    flags.DEFINE_integer("clips", 4, "Clips scored per schedule.")
    flags.DEFINE_float("clip_seconds", 1.0, "Seconds scored from the middle of each clip.")
    cli.define_seed_flag(0)
    flags.DEFINE_integer("workers", 2, "Scoring processes, each loading the model and using cores / workers "
                         "threads (2 scored 1.2x as many schedules as 1 on 2 cores: docs/evaluation.md).")
    flags.DEFINE_float("budget_minutes", 30.0, "Stop after this long with the best so far; rerun to continue.")
    flags.DEFINE_integer("exhaustive_limit", 2000, "Score the whole grid when it has at most this many schedules.")


def main(argv):
    del argv
    from wavegrad_tf.schedule_search_lib import search

    start = time.monotonic()
    result = search(cli.model_source(kinds=("run",)).run, FLAGS.output, FLAGS.iterations, FLAGS.audio_dir,
                    FLAGS.clips, FLAGS.clip_seconds, FLAGS.seed, FLAGS.workers, FLAGS.budget_minutes,
                    FLAGS.exhaustive_limit, progress=True)
    state = "converged" if result["complete"] else "stopped at the budget (rerun the same command to continue)"
    print(f"{state} after {time.monotonic() - start:.0f} s; {result['schedules_scored']} schedules scored\n"
          f"best: {result['betas']}\nlog-mel L1 {result['score']:.4f}, final noise level "
          f"{result['final_noise_level']:.3f}\nwrote {FLAGS.output}/schedule.yaml")


if __name__ == "__main__":
    cli.main(define_flags, main)
