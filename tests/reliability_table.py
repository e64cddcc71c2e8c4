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


def _float_wav_with_nan(work, fx):
    import soundfile as sf

    audio = np.full(32000, 0.1, "f4")
    audio[20000] = np.nan
    sf.write(work / "nan.wav", audio, 16000, subtype="FLOAT")


def _broken_run_config(work, fx):
    import shutil

    shutil.copytree(fx["run"], work / "broken", ignore=shutil.ignore_patterns("audio_cache"))
    (work / "broken" / "config.yaml").write_text("audio: [sample_rate: 16000\n")


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


def _unusable_corpus(work, fx):
    import soundfile as sf

    (work / "bad").mkdir()
    sf.write(work / "bad" / "silent.wav", np.zeros(32000, "f4"), 16000)
    (work / "bad" / "corrupt.wav").write_bytes(b"RIFF\0\0not audio")


def _metadata(rows: bytes):
    def setup(work, fx):
        (work / "lj" / "wavs").mkdir(parents=True)
        (work / "lj" / "metadata.csv").write_bytes(rows)
    return setup


def _extends_cycle(work, fx):
    (work / "a.yaml").write_text(f"extends: {work}/b.yaml\n")
    (work / "b.yaml").write_text(f"extends: {work}/a.yaml\n")


# Nine levels of nine aliases: 306 bytes that stand for 9^9 values.
BOMB = "".join(f"{chr(97 + k)}: &{chr(97 + k)} [" + ",".join([f"*{chr(96 + k)}" if k else "1"] * 9) + "]\n"
               for k in range(9)).encode()


def _other_files(work, fx):
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("not an export")


def _discrete(work, fx):
    config = Path(fx["run"]) / "config.yaml"
    config.write_text(config.read_text().replace("continuous: true", "continuous: false"))


def _silent_corpus(work, fx):
    (work / "silent").mkdir()
    for name in ("a.wav", "b.wav"):
        _save_wav(work / "silent" / name, 32000, level=0.0)


TRAIN = ("-m", "wavegrad_tf.train", "--config", "{run}/config.yaml", "--model_dir", "{run}")
INFER = ("-m", "wavegrad_tf.infer", "--model", "{run}", "--output", "{work}/out.wav")
EVALUATE = ("-m", "wavegrad_tf.evaluate", "--model", "{run}", "--output", "{work}/e")
SEARCH = ("-m", "wavegrad_tf.schedule_search", "--model", "{run}", "--output", "{work}/s")
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
    Case("infer", "passes a folder as --input with a file as --output", INFER + ("--input", "{work}",), 2,
         "--output {work}/out.wav: --input {work} names many files; expected a folder to write them into"),
    Case("infer", "passes a file that does not exist", INFER + ("--input", "{work}/nope.wav"), 2, "no such file"),
    Case("infer", "passes audio shorter than half an analysis window", INFER + ("--input", "{work}/short.wav"), 2,
         "expected more than 400 at 16000 Hz", lambda w, fx: _save_wav(w / "short.wav", 100)),
    Case("infer", "passes a corrupt wav", INFER + ("--input", "{work}/bad.wav"), 2, "not readable audio",
         _write("bad.wav", b"RIFF$\0\0\0WAVEfmt garbage" + bytes(60))),
    Case("infer", "passes a float wav holding a NaN", INFER + ("--input", "{work}/nan.wav"), 2,
         "nan.wav: sample 20000 (1.25 s) is NaN or infinite", _float_wav_with_nan, tensorflow=True),
    Case("infer", "vocodes with a run whose config.yaml is not YAML", ("-m", "wavegrad_tf.infer", "--model",
                                                                       "{work}/broken", "--input", "{speech}", "--output",
                                                                       "{work}/o.wav"), 2,
         "broken/config.yaml: not valid YAML at line 2", _broken_run_config),
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
         2, "has its schedule, precision and consistency baked in"),
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
    Case("schedule_search", "asks for 0 iterations", SEARCH + ("--iterations", "0"), 2,
         "--iterations: expected >= 1, got 0"),
    # The second audit (issue 21): data loss, wrong output with success, unsafe paths, unbounded input.
    Case("train", "resumes with a NaN learning rate", TRAIN + ("--steps", "200", "--override", "train.learning_rate=.nan"),
         2, "--override train.learning_rate=.nan: train.learning_rate: expected a finite number, got nan"),
    Case("train", "resumes with an infinite noise_scale", TRAIN + ("--steps", "200", "--override", "model.noise_scale=.inf"),
         2, "model.noise_scale: expected a finite number, got inf"),
    Case("train", "resumes with a --data_dir of silent and corrupt files",
         TRAIN + ("--steps", "200", "--data_dir", "{work}/bad"), 2, "no usable training audio (0 of 2 files usable",
         _unusable_corpus, tensorflow=True),
    Case("train", "asks for --steps -1", TRAIN + ("--steps", "-1"), 2, "--steps -1: expected a whole number >= 1"),
    Case("train", "lists ../../elsewhere/x in metadata.csv", TRAIN + ("--steps", "200", "--data_dir", "{work}/lj"), 2,
         "id '../../elsewhere/x' is not a file name", _metadata(b"../../elsewhere/x|text\n")),
    Case("train", "gives a metadata.csv that is not UTF-8", TRAIN + ("--steps", "200", "--data_dir", "{work}/lj"), 2,
         "metadata.csv: not UTF-8 text", _metadata(b"caf\xe9|text\n")),
    Case("train", "gives configs that extend each other", ("-m", "wavegrad_tf.train", "--config", "{work}/a.yaml",
                                                            "--model_dir", "{run}", "--steps", "200"), 2,
         "extends itself", _extends_cycle),
    Case("train", "gives a folder as --config", ("-m", "wavegrad_tf.train", "--config", "{work}", "--model_dir", "{run}",
                                                 "--steps", "200"), 2, "is a folder, expected a YAML config file"),
    Case("train", "gives a config that is not YAML", ("-m", "wavegrad_tf.train", "--config", "{work}/c.yaml",
                                                      "--model_dir", "{run}", "--steps", "200"), 2,
         "c.yaml: not valid YAML at line", _write("c.yaml", b"train: {batch_size: [1\n")),
    Case("train", "gives an override that is not YAML", TRAIN + ("--steps", "200", "--override", "train.batch_size=[1"),
         2, "not valid YAML"),
    Case("train", "gives a YAML alias bomb (306 bytes, 9^9 values) as --config", ("-m", "wavegrad_tf.train", "--config", "{work}/c.yaml",
                                                                   "--model_dir", "{run}", "--steps", "200"), 2,
         "expands to more than 100,000 values", _write("c.yaml", BOMB)),
    Case("train", "uses --strategy tpu without --tpu", TRAIN + ("--steps", "200", "--strategy", "tpu"), 2,
         "--strategy tpu: expected --tpu NAME"),
    Case("train", "splits the CPU into replicas that cannot share the batch", TRAIN + ("--steps", "200",
                                                                                      "--cpu_replicas", "3"), 2,
         "train.batch_size 4 does not split into 3 equal parts", tensorflow=True),
    Case("train", "fine-tunes a folder with a config but no weights", ("-m", "wavegrad_tf.train", "--init_from",
                                                                       "{work}/cfg", "--model_dir", "{work}/new"),
         2, "--init_from {work}/cfg: has a config but no weights (no checkpoints/ckpt-* and no weights.npz)",
         lambda w, fx: ((w / "cfg").mkdir(), (w / "cfg" / "config.yaml").write_text(
             (Path(fx["run"]) / "config.yaml").read_text()))),
    Case("infer", "writes the output over its own input", ("-m", "wavegrad_tf.infer", "--model", "{run}", "--input",
                                                            "{work}/x.wav", "--output", "{work}/x.wav"), 2,
         "--output {work}/x.wav: is the input", lambda w, fx: _save_wav(w / "x.wav", 8000)),
    Case("infer", "passes a .npz named .npy", INFER + ("--input", "{work}/m.npy"), 2, "an .npz archive",
         lambda w, fx: (np.savez(w / "m.npz", mel=np.zeros((10, 64), "f4")), (w / "m.npz").rename(w / "m.npy"))),
    Case("infer", "asks for --seed -1", INFER + ("--input", "{speech}", "--seed", "-1"), 2,
         "--seed -1: expected a whole number from 0 to 9007199254740991"),
    Case("infer", "asks for chunks smaller than the overlap", INFER + ("--input", "{speech}", "--chunk_frames", "20"),
         2, "--chunk_frames 20: expected more than 64", tensorflow=True),
    Case("infer", "gives a folder as --schedule", INFER + ("--input", "{speech}", "--schedule", "{work}"), 2,
         "is a folder, expected a .txt, .npy or .yaml file of betas"),
    Case("infer", "gives a YAML schedule that is not a list", INFER + ("--input", "{speech}", "--schedule",
                                                                       "{work}/s.yaml"), 2,
         "expected a list of betas or a mapping with 'betas'", _write("s.yaml", b"betas: 0.5\n")),
    Case("infer", "gives a schedule of words", INFER + ("--input", "{speech}", "--schedule", "{work}/s.yaml"), 2,
         "expected numbers, got ['a', 'b']", _write("s.yaml", b"[a, b]\n")),
    Case("infer", "gives betas too small to add noise", INFER + ("--input", "{speech}", "--schedule", "{work}/s.txt"),
         2, "betas below 1e-10 add no noise", _write("s.txt", b"1e-30\n0.5\n")),
    Case("infer", "gives a YAML alias bomb as --schedule", INFER + ("--input", "{speech}", "--schedule",
                                                                             "{work}/s.yaml"), 2,
         "expands to more than 100,000 values", _write("s.yaml", BOMB + b"betas: *i\n")),
    Case("infer (TFLite)", "passes an empty .tflite", ("-m", "wavegrad_tf.infer", "--model", "{work}/e.tflite",
                                                       "--input", "{speech}", "--output", "{work}/o.wav"), 2,
         "not a TFLite file", _write("e.tflite", b"")),
    Case("infer (TFLite)", "passes a text file as .tflite", ("-m", "wavegrad_tf.infer", "--model", "{work}/t.tflite",
                                                             "--input", "{speech}", "--output", "{work}/o.wav"), 2,
         "not a TFLite file", _write("t.tflite", b"this is not a model, only text\n")),
    Case("infer (TFLite)", "asks for chunks larger than the file's largest signature",
         ("-m", "wavegrad_tf.infer", "--model", "{tflite}", "--input", "{speech}", "--output", "{work}/o.wav",
          "--chunk_frames", "500"), 2, "--chunk_frames 500: expected more than 64 (twice the overlap) and at most 120"),
    Case("infer (TF Serving)", "gives a --timeout of 0", ("-m", "wavegrad_tf.infer", "--model",
                                                          "http://127.0.0.1:9/v1/models/x", "--input", "{speech}",
                                                          "--output", "{work}/o.wav", "--timeout", "0"), 2,
         "--timeout 0.0: expected a positive number of seconds"),
    Case("evaluate", "writes its output inside --audio_dir", ("-m", "wavegrad_tf.evaluate", "--model", "{run}",
                                                              "--audio_dir", "{work}/a", "--output", "{work}/a/e"), 2,
         "inside --audio_dir", lambda w, fx: ((w / "a").mkdir(), _save_wav(w / "a" / "x.wav", 8000))),
    *(Case("evaluate", f"asks for {flag}={value}", EVALUATE + (f"{flag}={value}",), 2,
           f"{flag} {value}: expected a whole number >= {least}")
      for flag, value, least in (("--max_files", "-1", 1), ("--griffin_lim_iterations", "-1", 0))),
    Case("export.saved_model", "asks for --version=-1", ("-m", "export.saved_model", "--model", "{run}", "--output",
                                                         "{work}/x", "--version=-1"), 2,
         "--version -1: expected a whole number >= 0"),
    Case("export.saved_model", "names the model ../../x", ("-m", "export.saved_model", "--model", "{run}", "--output",
                                                           "{work}/x", "--model_name", "../../x"), 2,
         "--model_name '../../x': expected a plain folder name"),
    Case("export.tflite", "exports into a folder of other files", ("-m", "export.tflite", "--model", "{run}", "--output",
                                                                   "{work}/mine", "--variants", "float16"), 2,
         "--output {work}/mine: holds notes.txt, which no export wrote", _other_files),
    Case("export.tflite", "asks for signatures smaller than the runner's overlap", ("-m", "export.tflite", "--model",
                                                                                   "{run}", "--output", "{work}/t",
                                                                                   "--signature_frames", "50,120"), 2,
         "--signature_frames [50, 120]: expected sizes of at least 65 frames"),
    Case("export.tflite", "asks for full int8 with the mel projection", ("-m", "export.tflite", "--model", "{run}",
                                                                        "--output", "{work}/t", "--variants",
                                                                        "full_int8"), 2,
         "--variants full_int8: full int8 cannot hold the mel consistency projection", tensorflow=True),
    Case("schedule_search", "asks for 0 workers", SEARCH + ("--workers", "0"), 2, "--workers: expected >= 1, got 0"),
    Case("schedule_search", "gives a NaN --clip_seconds", SEARCH + ("--clip_seconds", "nan"), 2,
         "--clip_seconds: expected a positive number, got nan"),
    Case("schedule_search", "resumes a search whose search.json is damaged", SEARCH + ("--iterations", "2"), 2,
         "search.json is not JSON", lambda w, fx: ((w / "s").mkdir(), (w / "s" / "search.json").write_text("{"))),
    Case("demo", "asks for --steps 0", ("-m", "wavegrad_tf.demo", "--model_dir", "{work}/d", "--steps", "0"), 2,
         "--steps 0: expected a whole number >= 1"),
    Case("schedule_search", "searches a discrete-index model", SEARCH + ("--iterations", "2"), 2,
         "samples only with its training schedule", _discrete),
    # The third audit (issue 29): wrong output with success, tracebacks, unclear messages.
    Case("schedule_search", "searches with an --audio_dir of silent wavs", SEARCH + ("--audio_dir", "{work}/silent"), 2,
         "no clip to score among 2 files: each must hold --clip_seconds 1 s of audio that is not silent (skipped 2: "
         "silent)", _silent_corpus),
    Case("schedule_search", "asks for --clip_seconds 1e9", SEARCH + ("--clip_seconds", "1e9"), 2,
         "no clip to score among", tensorflow=True),
    Case("infer", "asks for 100,000,000 projection iterations", INFER + ("--input", "{speech}",
                                                                          "--consistency_iterations", "100000000"), 2,
         "--consistency_iterations: expected a whole number from 1 to 1000, got 100000000"),
    Case("infer", "vocodes a mel of one frame", INFER + ("--input", "{work}/m.npy"), 0, "wrote",
         _npy("m.npy", np.full((1, 64), -5.0, "f4")), tensorflow=True),
    Case("infer (TFLite)", "keeps an incomplete wavegrad.json beside the .tflite",
         ("-m", "wavegrad_tf.infer", "--model", "{work}/lite/float16.tflite", "--input", "{speech}", "--output",
          "{work}/o.wav"), 2, "wavegrad.json: expected an object with 'audio' (feature settings) and 'betas'",
         _tflite_with(lambda m: json.dumps({"audio": m["audio"]}))),
    Case("infer (TFLite)", "keeps a wavegrad.json whose signature_frames are words beside the .tflite",
         ("-m", "wavegrad_tf.infer", "--model", "{work}/lite/float16.tflite", "--input", "{speech}", "--output",
          "{work}/o.wav"), 2, "signature_frames: expected a list of whole numbers >= 1, got 'many'",
         _tflite_with(lambda m: json.dumps({**m, "signature_frames": "many"}))),
    Case("evaluate", "writes its --output over a file", EVALUATE[:-1] + ("{work}/f",), 2,
         "--output {work}/f: is a file; expected a folder", _write("f", b"mine")),
    Case("export.tflite", "exports into {work}/t/.. (its own scratch folder)",
         ("-m", "export.tflite", "--model", "{run}", "--output", "{work}/t/.."), 2, "which no export wrote"),
    *(Case("web", f"asks for --port {port}", ("-m", "wavegrad_tf.web", "--model", "{tflite}", "--port", port), 2,
           f"--port {port}: expected a port number from 0 (any free one) to 65535") for port in ("-1", "70000")),
]


def _save_wav(path, samples, level=0.1):
    import soundfile as sf

    sf.write(path, np.zeros(samples, "f4") + level, 16000)


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
    lines += ["", SERVING, "", KILLS, "", GUARDS, "", THIRD, ""]
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

- `kill -9` during training (`tests/test_training.py`): checkpoints every 3 steps, killed after step 8; the
  newest checkpoint on disk is whole (step >= 6), and the restarted run resumes at exactly that step with its
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


GUARDS = """## Nothing lost, nothing wrong reported as right (the second audit)

- Five ways the audit lost data, each reproduced as it did it in `tests/test_data_loss.py`: a NaN learning
  rate (or any non-finite number: every config field must be finite, then in range); a run whose every step is
  skipped stops with an error at the next progress line, and weights that are no longer finite are never
  saved, so the checkpoint rotation cannot replace the last good checkpoint; a resume with unusable
  `--data_dir` leaves the run folder byte for byte as it was (config.yaml and data_split.json are written only
  when the run starts, a measured normaliser of 0 is refused); `infer` never writes over its `--input` (also
  through `.` or a symlink); a TFLite export replaces its folder whole, so no file of an older export survives
  beside a new wavegrad.json, and a folder holding anything else is refused; one training process per run
  folder (a kernel lock, `.lock`, holding the PID: a second is refused with it, a killed holder leaves none); a
  new run refused before it starts leaves no empty folder.
- Outputs appear whole or not at all, under names of their own: `infer` writes a unique hidden partial file and
  renames it; exports are written into a fresh folder and renamed into place; SIGTERM is handled like Ctrl-C,
  so those partial files are removed; a disk that is full or a folder that is read-only is one line naming the
  path.
- Runtimes: a LiteRT vocoder shared by threads serialises its calls (four threads at once give exactly what
  each gives alone, `tests/test_tflite.py`); a TF Serving reply is checked before it is audio (its shape must be
  the request's, finite numbers, JSON with `outputs`: `tests/test_export.py`), redirects are refused, not
  followed, and `--timeout` bounds a silent server; the sampler bounds every iterate at +-8, so a network that
  feeds its output back ever larger ends finite (`tests/test_diffusion.py`), and the mel-consistency projection
  ends inside full scale: on loud, limited speech the projection alone put 13 % of the pretrained model's
  samples past 1.0, and none after the clip it alternates with.
- Bounded parsers: a config, schedule or override is at most 1 MB of YAML and 100,000 values once aliases
  are expanded (a 306-byte alias bomb stands for 387 million), `extends:` cycles are named, and values in
  error messages are cut short."""


THIRD = """## Nothing deleted that an export did not write, nothing served that is not audio (the third audit)

- Exports own only what they write (`tests/test_data_loss.py`): a folder holding a wavegrad.json beside the
  user's `notes.txt` and `images/` is refused, naming them, and left byte for byte as it was (it was deleted). An
  export of the settings already in a folder adds its files beside the others; one of other settings replaces
  the export whole. The web command never replaces another export: it reuses the variant, adds it beside an
  export of the same settings, or is refused (it deleted a float32 + float16 export to write dynamic_int8).
  A partial export's folder carries its writer's PID and holds the intermediate SavedModel: after `kill -9`
  the next export of the same `--output` removes it, never a live writer's (16 MB stayed in /tmp before).
  New files and folders get the umask's modes (0644 and 0755 under umask 022; they were 0600 and 0700).
- Weights that are not finite are refused wherever weights are loaded (`tests/test_wrong_output.py`): the
  SavedModel and TFLite exporters, the web page's export and `package` name the variable and write nothing.
- A TF Serving reply is audio only if it is numbers (not JSON booleans, strings or nulls), finite, within the
  +-8 the sampler bounds its output to, at most what the request can need (1 MB + 32 bytes a sample, not a 3 GB
  body read whole), within `--timeout` as a whole (a server dripping a byte a second is given up on at the
  timeout, it was waited on for a minute) and nested no deeper than Python can parse; a `wavegrad.json`, from a
  file or a server, must have each field of the right type and range (`tests/test_export.py`).
- The web server answers only requests naming its own host (loopback names, `--host`, `--allowed_hosts`): a page
  that rebinds its DNS name to 127.0.0.1 gets 403. It serves a fixed set of files (the page, LiteRT.js's built
  files, the model's two), no listing and no symlink out of `web/`; an idle connection is closed after 30 s and at
  most 32 are served at once (300 idle ones held 303 threads) (`tests/test_web.py`).
- A mel of one or two frames vocodes (a regression: the projection's STFT could not reflect 400 samples at each
  end of 200); the reflection goes on in silence, in the TensorFlow and NumPy twins alike.

## The contract at every boundary, held by generated inputs

Three audits in a row found new cases in the same classes, so `tests/test_properties.py` generates them
(Hypothesis), at each boundary, and holds one contract: **a correct result, or a `UserError` whose one-line
message names the input and what was expected (each command prints it as `error: ...` and exits 2), with nothing
written**.

| boundary | what is generated | a correct result is |
|---|---|---|
| a mel (`infer`'s `.npy`) | 0 to 90 frames, any bins, 0 to 3 axes, float16/32/64, integers, booleans, NaN, inf, extreme values | audio of frames x hop samples, finite, under full scale |
| a config override | every field, and any key, with any YAML value (NaN, inf, 1e400, aliases, lists, control characters) | a config that validates, every number finite |
| a schedule | lists of any floats (NaN, inf, 0, negative, >= 1, falling, below 1e-10) or any JSON value | betas a sampler runs: finite, in (0, 1), not falling, >= 1e-10, finite coefficients |
| `wavegrad.json` | fields removed, replaced by any JSON value, the text cut short, or another document | every field of its type and range |
| a TF Serving reply | any JSON (booleans, nulls, strings, ragged lists, NaN, 1e30, wrong shapes) or its first bytes | the [1, samples] sent, finite, within the sampler's +-8 |
| a web request | paths of traversals, encodings, the model's neighbours and a symlink out; any Host; any method | 200 with one of the served files, to an allowed host; otherwise 403, 404 or 501 |

The `ci` profile (the default: 50 inputs per property, derandomized, so CI sees the same inputs every run) keeps
the file to about a minute; `HYPOTHESIS_PROFILE=thorough` tries 1,000 per property. Found so far, and fixed: an
override holding a newline broke the one-line message; YAML errors spanned two lines; a schedule of strings or
mappings escaped as a TypeError or ValueError."""


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
    out.write_text(markdown())
    print(f"wrote {out}", file=sys.stderr)
