"""The hostile-input cases: what a careless or hostile user does at each entry point, and what must happen.

`tests/test_reliability.py` runs every row; `python tests/reliability_table.py` writes docs/reliability.md from
this table, so the page lists exactly what is tested. A row's `setup(work, fixtures)` prepares files and returns
the arguments; placeholders in `args` are filled from the fixtures: {run} (a copy of the tiny training run),
{tflite} (a static-shape TFLite export of it), {speech} (a real clip), {work} (a scratch folder).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    entry: str  # the command (python -m ...) or interface
    does: str  # what the user does
    args: tuple  # command-line arguments, with placeholders
    status: int  # expected exit status
    message: str  # expected in the last line of stderr (exit != 0) or in stdout (exit 0)
    setup: Optional[Callable[[Path, dict], None]] = None
    tensorflow: bool = False  # whether the refusal may come after TensorFlow is imported


def _npy(name, array):
    def setup(work, fx):
        np.save(work / name, array)
    return setup


def _write(name, data):
    def setup(work, fx):
        (work / name).write_bytes(data)
    return setup


def _corrupt_newest_checkpoint(work, fx):
    newest = max((Path(fx["run"]) / "checkpoints").glob("ckpt-*.data-*"), key=lambda p: int(p.name[5:].split(".")[0]))
    newest.write_bytes(newest.read_bytes()[:100])


def _tflite_with(meta_change):
    def setup(work, fx):
        folder = work / "lite"
        folder.mkdir()
        (folder / "float16.tflite").write_bytes((Path(fx["tflite"]).parent / "float16.tflite").read_bytes())
        meta = json.loads((Path(fx["tflite"]).parent / "wavegrad.json").read_text())
        (folder / "wavegrad.json").write_text(meta_change(meta))
    return setup


def _empty_folder(work, fx):
    (work / "empty").mkdir()


def _discrete(work, fx):
    config = Path(fx["run"]) / "config.yaml"
    config.write_text(config.read_text().replace("continuous: true", "continuous: false"))


TRAIN = ("-m", "wavegrad_tf.train", "--config", "{run}/config.yaml", "--model_dir", "{run}")
INFER = ("-m", "wavegrad_tf.infer", "--model", "{run}", "--output", "{work}/out.wav")
CASES = [
    Case("train", "resumes a run with another n_mels", TRAIN + ("--steps", "200", "--override", "audio.n_mels=80"),
         2, "audio.n_mels: 64 -> 80"),
    Case("train", "resumes a run with another fmin (same tensor shapes)",
         TRAIN + ("--steps", "200", "--override", "audio.fmin=40"), 2, "audio.fmin: 20.0 -> 40.0"),
    Case("train", "resumes a run with another learning rate", TRAIN + ("--steps", "151", "--override",
                                                                          "train.learning_rate=0.0005"),
         0, "resuming with train.learning_rate: 0.002 -> 0.0005", tensorflow=True),
    Case("train", "asks for fewer steps than the run has", TRAIN + ("--steps", "100",), 2,
         "--steps 100: the run in", tensorflow=True),
    Case("train", "resumes after the newest checkpoint was cut short", TRAIN + ("--steps", "151",), 0,
         "resumed from", _corrupt_newest_checkpoint, tensorflow=True),
    Case("train", "gives a --data_dir that does not exist", TRAIN + ("--steps", "200", "--data_dir", "{work}/nope"),
         2, "--data_dir {work}/nope: not a folder"),
    Case("train", "gives an empty --data_dir", TRAIN + ("--steps", "200", "--data_dir", "{work}/empty"), 2,
         "--data_dir {work}/empty: no .wav/.flac/.ogg files and no metadata.csv", _empty_folder),
    Case("train", "misspells an override", TRAIN + ("--steps", "200", "--override", "train.batch=8"), 2,
         "train.batch: unknown key"),
    Case("infer", "passes a mel with 80 bins to a 64-bin model", INFER + ("--input", "{work}/m.npy"), 2,
         "m.npy: expected 64 mel bins in the last axis, got shape (10, 80)", _npy("m.npy", np.zeros((10, 80), "f4"))),
    Case("infer", "passes a transposed mel", INFER + ("--input", "{work}/m.npy"), 2, "it looks transposed",
         _npy("m.npy", np.zeros((64, 10), "f4"))),
    Case("infer", "passes an absurd but finite mel (1e30)", INFER + ("--input", "{work}/m.npy"), 2,
         "values from 1e+30 to 1e+30, expected log-mel features in", _npy("m.npy", np.full((10, 64), 1e30, "f4"))),
    Case("infer", "passes a mel in decibels", INFER + ("--input", "{work}/m.npy"), 2, "is it scaled another way",
         _npy("m.npy", np.full((10, 64), -100.0, "f4"))),
    Case("infer", "passes a mel holding NaN", INFER + ("--input", "{work}/m.npy"), 2, "contains NaN or inf",
         _npy("m.npy", np.full((10, 64), np.nan, "f4"))),
    Case("infer", "passes a garbage .npy", INFER + ("--input", "{work}/m.npy"), 2,
         "m.npy: not a NumPy .npy array; expected a float array [frames, 64]", _write("m.npy", b"garbage" * 20)),
    Case("infer", "passes a folder as --input", INFER + ("--input", "{work}",), 2, "is a folder"),
    Case("infer", "passes a file that does not exist", INFER + ("--input", "{work}/nope.wav"), 2, "no such file"),
    Case("infer", "passes audio shorter than half an analysis window", INFER + ("--input", "{work}/short.wav"), 2,
         "expected more than 400 at 16000 Hz", lambda w, fx: _save_wav(w / "short.wav", 100)),
    Case("infer", "passes a corrupt wav", INFER + ("--input", "{work}/bad.wav"), 2, "not readable audio",
         _write("bad.wav", b"RIFF$\0\0\0WAVEfmt garbage" + bytes(60))),
    Case("infer", "writes into a folder that does not exist", ("-m", "wavegrad_tf.infer", "--model", "{run}",
                                                              "--input", "{speech}", "--output", "{work}/no/o.wav"),
         2, "folder {work}/no does not exist"),
    Case("infer", "writes to a .mp3", ("-m", "wavegrad_tf.infer", "--model", "{run}", "--input", "{speech}",
                                       "--output", "{work}/o.mp3"), 2, "expected a .wav/.flac/.ogg file name"),
    Case("infer", "asks for 7 iterations (no such preset)", INFER + ("--input", "{speech}", "--iterations", "7"), 2,
         "no preset has that many steps"),
    Case("infer", "gives a schedule that falls", INFER + ("--input", "{speech}", "--schedule", "{work}/s.txt"), 2,
         "expected non-decreasing betas", _write("s.txt", b"0.01\n0.5\n0.1\n")),
    Case("infer", "points --model at a folder that is no model", ("-m", "wavegrad_tf.infer", "--model", "{work}",
                                                                  "--input", "{speech}", "--output", "{work}/o.wav"),
         2, "no saved_model.pb and no numbered version folder"),
    Case("infer", "vocodes after the newest checkpoint was cut short", INFER + ("--input", "{speech}",), 0, "wrote",
         _corrupt_newest_checkpoint, tensorflow=True),
    Case("infer (TFLite)", "asks a .tflite for another schedule", ("-m", "wavegrad_tf.infer", "--model", "{tflite}",
                                                                   "--input", "{speech}", "--output", "{work}/o.wav",
                                                                   "--iterations", "25"),
         2, "has its schedule and precision baked in"),
    Case("infer (TFLite)", "keeps a malformed wavegrad.json beside the .tflite",
         ("-m", "wavegrad_tf.infer", "--model", "{work}/lite/float16.tflite", "--input", "{speech}", "--output",
          "{work}/o.wav"), 2, "wavegrad.json: not JSON", _tflite_with(lambda m: "{\"audio\": ")),
    Case("infer (TFLite)", "keeps the wavegrad.json of another export beside the .tflite",
         ("-m", "wavegrad_tf.infer", "--model", "{work}/lite/float16.tflite", "--input", "{speech}", "--output",
          "{work}/o.wav"), 2, "says 80 mel bins, but float16.tflite takes 64",
         _tflite_with(lambda m: json.dumps({**m, "audio": {**m["audio"], "n_mels": 80}}))),
    Case("evaluate", "gives an empty --audio_dir", ("-m", "wavegrad_tf.evaluate", "--model", "{run}", "--audio_dir",
                                                    "{work}/empty", "--output", "{work}/e"), 2,
         "--audio_dir {work}/empty: no .wav/.flac/.ogg files", _empty_folder),
    Case("evaluate", "asks for a metric that does not exist", ("-m", "wavegrad_tf.evaluate", "--model", "{run}",
                                                               "--output", "{work}/e", "--metrics", "mos"), 2,
         "--metrics: unknown ['mos']"),
    Case("schedule_search", "asks for 0 iterations", ("-m", "wavegrad_tf.schedule_search", "--model", "{run}",
                                                      "--iterations", "0", "--output", "{work}/s"), 2,
         "--iterations: expected >= 1, got 0"),
    Case("schedule_search", "searches a discrete-index model", ("-m", "wavegrad_tf.schedule_search", "--model", "{run}",
                                                               "--iterations", "2", "--output", "{work}/s"), 2,
         "samples only with its training schedule", _discrete),
]


def _save_wav(path, samples):
    import soundfile as sf

    sf.write(path, np.zeros(samples, "f4") + 0.1, 16000)


def fill(text: str, fixtures: dict) -> str:
    return text.format(**fixtures)


def markdown() -> str:
    lines = ["# Reliability: what happens when input is wrong", "",
             "Every row is a case of `tests/test_reliability.py`, which runs it and checks the exit status and "
             "the message; this page is written from that table (`python tests/reliability_table.py`). A user "
             "error is one line on stderr (`error: ...`) and exit status 2, with no traceback (`--verbose` shows "
             "one); refusals marked *before loading* come before TensorFlow is even imported.", "",
             "| entry point | the user | exit | the message holds | before loading |", "|---|---|---|---|---|"]
    for case in CASES:
        lines.append(f"| `{case.entry}` | {case.does} | {case.status} | `{case.message}` | "
                     f"{'' if case.tensorflow or case.status == 0 else 'yes'} |")
    lines += ["", SERVING, "", KILLS, ""]
    return "\n".join(lines)


SERVING = """## The SavedModel and the stand-in server

`tests/test_export.py` sends the SavedModel's `serving_default` an empty batch, zero frames, more frames than
`--max_frames`, NaN, 1e30, lengths that do not match, 80 mel bins and a rank-2 mel: each is an
`InvalidArgument` status whose message names the input (`mel: expected [batch, frames, 64], got shape] [5 64]`),
and the graph checks its own output for NaN/inf before answering. `tests/test_reliability.py` sends the
stand-in server (`tests/serving_stub.py`) malformed JSON, an empty body, a JSON list, an empty `instances`, no
Content-Length and an unknown signature: each is HTTP 400 with an `error` field, as TF Serving answers; over
gRPC a bad input is `INVALID_ARGUMENT` and an unknown signature `FAILED_PRECONDITION`."""

KILLS = """## Killed, interrupted, corrupted

- `kill -9` during training (`tests/test_training.py`): checkpoints every 10 steps, killed after step 35; the
  newest checkpoint on disk is whole (step >= 30), and the restarted run resumes at exactly that step with its
  Adam state (optimizer iterations equal the step) and finishes 5 steps later.
- Ctrl-C during training (`tests/test_reliability.py`): SIGINT 15 steps after resuming a run at step 150, with
  checkpoints only every 1,000 steps; the run finishes the step it is in, saves a checkpoint there, says so,
  and exits with status 130. SIGTERM does the same; a second Ctrl-C stops at once (and saves). The signal is
  a flag the loop reads after each step, not a KeyboardInterrupt raised wherever Python happens to be.
  A signal the process inherited as ignored stays ignored: `python -m wavegrad_tf.train ... &` from a script
  or a non-interactive shell ignores SIGINT (POSIX), which is why this test once timed out when the suite
  itself was started with `&`; the test now gives its child SIGINT back, and such a run stops with SIGTERM.
- A newest checkpoint cut to 100 bytes (rows above): training and inference name it, fall back to the one
  before, and go on.
- A resume with other settings (rows above) is refused before anything is written: config.yaml and every
  checkpoint stay as they were, and the run still trains and vocodes (`tests/test_reliability.py`).
- A run copied elsewhere (`tests/test_reliability.py`) resumes and vocodes from another working folder; the
  audio cache names its pieces relative to itself.
- `schedule_search` killed with its workers (`tests/test_schedule_search.py`): after at least 100 scored
  schedules, a restart re-scores none of them and ends at the same best schedule."""


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
    out.write_text(markdown())
    print(f"wrote {out}", file=sys.stderr)
