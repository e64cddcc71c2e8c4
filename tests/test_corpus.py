"""Vocoding a corpus in one process (`infer --input MANY`) and on Apache Beam: folder, glob and list inputs mirrored
into the output folder, a killed job resumed, a corrupt input among good ones, each file's audio the same alone or
in any batch, and the Beam pipeline's files equal to the folder mode's."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SPEECH, run_module
from wavegrad_tf.infer_lib import vocode_corpus

KEYS = ["a/one.wav", "a/b/two.wav", "three.flac", "four.wav", "mel.npy"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four recordings of 1.0 to 2.2 s in nested folders and a mel (as a TTS model writes it)."""
    from wavegrad_tf.config import load_config
    from wavegrad_tf.mel import log_mel_spectrogram

    root = tmp_path_factory.mktemp("corpus") / "in"
    for i, key in enumerate(KEYS[:-1]):
        audio, rate = sf.read(SPEECH[i])
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / key, audio[:int(rate * (1.0 + 0.4 * i))], rate)
    np.save(root / KEYS[-1], log_mel_spectrogram(sf.read(SPEECH[5])[0][:27000].astype(np.float32),
                                                 load_config("demo").audio, use_tf=False))
    return root


def outputs(folder):
    return {p.relative_to(folder).as_posix(): sf.read(p, dtype="int16")[0] for p in sorted(folder.rglob("*.wav"))}


@pytest.fixture(scope="module")
def whole(tiny_run, corpus, tmp_path_factory):
    """The folder mode's output for the whole corpus, seed 5."""
    out = tmp_path_factory.mktemp("whole") / "out"
    report = vocode_corpus(str(tiny_run), str(corpus), str(out), seed=5, progress=False)
    assert report["vocoded"] == 5 and not report["failed"]
    return out


def same(got: dict, expected: dict, equal: bool = True) -> None:
    """The same files; each the same audio (`equal`), or other audio of the same length (another key, other noise)."""
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert len(got[key]) == len(expected[key]) and np.array_equal(got[key], expected[key]) == equal, key


def test_folder_glob_and_list_inputs_mirror_their_paths(whole, corpus, tiny_run, tmp_path):
    """The outputs mirror the inputs' relative paths (a/b/two.wav -> a/b/two.wav, mel.npy -> mel.wav), each of its
    input's length. A glob's keys are relative to its folder part (a/one.wav is one.wav there: other noise); a list's
    to its files' common folder (here the corpus: the same keys, the same audio)."""
    written = outputs(whole)
    assert sorted(written) == sorted(k.rsplit(".", 1)[0] + ".wav" for k in KEYS)
    for key in KEYS[:-1]:
        assert len(written[key.rsplit(".", 1)[0] + ".wav"]) == sf.info(corpus / key).frames
    assert len(written["mel.wav"]) == len(np.load(corpus / "mel.npy")) * 200
    report = json.loads((whole / "report.json").read_text())
    assert report["seed"] == 5 and report["vocoded"] == 5 and report["audio_seconds"] > 5
    vocode_corpus(str(tiny_run), f"{corpus}/a/**/*.wav", str(tmp_path / "glob"), seed=5, progress=False)
    same(outputs(tmp_path / "glob"), {"one.wav": written["a/one.wav"], "b/two.wav": written["a/b/two.wav"]}, False)
    (tmp_path / "list.txt").write_text("# two of them\nin/four.wav\n\nin/a/b/two.wav\n")
    shutil.copytree(corpus, tmp_path / "in")
    vocode_corpus(str(tiny_run), f"@{tmp_path / 'list.txt'}", str(tmp_path / "list"), seed=5, progress=False)
    same(outputs(tmp_path / "list"), {"four.wav": written["four.wav"], "a/b/two.wav": written["a/b/two.wav"]})


def test_each_file_s_audio_is_the_same_alone_or_in_any_batch(whole, corpus, tiny_run, tmp_path):
    """Bit for bit: each file vocoded alone (a glob naming it alone, rooted at the corpus so its key is the same)
    and among others in another order, as in the whole corpus: its noise is keyed by its relative path, and it is
    padded to its own length bucket in a batch of its bucket's size."""
    written = outputs(whole)
    for pattern, name in ((f"{corpus}/[a]/one.wav", "a/one.wav"), (f"{corpus}/mel.np[y]", "mel.wav")):
        shutil.rmtree(tmp_path / "alone", ignore_errors=True)
        report = vocode_corpus(str(tiny_run), pattern, str(tmp_path / "alone"), seed=5, progress=False)
        assert report["vocoded"] == 1 and np.array_equal(outputs(tmp_path / "alone")[name], written[name]), name
    (tmp_path / "order.txt").write_text("\n".join(str(corpus / k) for k in reversed(KEYS)) + "\n")
    vocode_corpus(str(tiny_run), f"@{tmp_path / 'order.txt'}", str(tmp_path / "order"), seed=5, progress=False)
    reordered = outputs(tmp_path / "order")
    assert sorted(reordered) == sorted(written) and all(np.array_equal(reordered[k], written[k]) for k in written)
    other = vocode_corpus(str(tiny_run), str(corpus), str(tmp_path / "seed6"), seed=6, progress=False)
    assert other["vocoded"] == 5 and not np.array_equal(outputs(tmp_path / "seed6")["four.wav"], written["four.wav"])


def test_a_corrupt_input_is_reported_and_the_others_vocoded(corpus, tiny_run, tmp_path):
    shutil.copytree(corpus, tmp_path / "in")
    (tmp_path / "in" / "a" / "broken.wav").write_bytes(b"RIFF\0\0\0\0WAVEnot audio")
    np.save(tmp_path / "in" / "nan.npy", np.full((40, 64), np.nan, np.float32))
    proc = run_module(["-m", "wavegrad_tf.infer", "--model", str(tiny_run), "--input", str(tmp_path / "in"),
                       "--output", str(tmp_path / "out"), "--seed", "5"])
    assert "vocoded 5 files" in proc.stdout and "failed 2" in proc.stdout, proc.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(f["file"].rsplit("/", 1)[-1] for f in report["failed"]) == ["broken.wav", "nan.npy"]
    assert "contains NaN or inf" in next(f["error"] for f in report["failed"] if f["file"].endswith("nan.npy"))
    assert len(outputs(tmp_path / "out")) == 5


def test_a_killed_job_goes_on_where_it_stopped(corpus, tiny_run, tmp_path):
    """kill -9 once the first outputs are written; run again: the written files are not vocoded again (same bytes,
    same modification time), the rest are, and no partial file is left anywhere."""
    for i in range(4):  # more files, so the job is killed midway
        shutil.copytree(corpus, tmp_path / "in" / f"copy{i}")
    args = [sys.executable, "-m", "wavegrad_tf.infer", "--model", str(tiny_run), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), "--seed", "5", "--batch_size", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list((tmp_path / "out").rglob("*.wav"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "out").rglob("*.wav")}
    assert 3 <= len(before) < 20
    proc = run_module(args[1:])
    assert f"skipped {len(before)} already there" in proc.stdout and f"vocoded {20 - len(before)} files" in proc.stdout
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == stamp for p, stamp in before.items())
    assert len(list((tmp_path / "out").rglob("*.wav"))) == 20
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


def test_the_beam_pipeline_writes_the_folder_mode_s_files(whole, corpus, tiny_run, tmp_path):
    """On Beam's DirectRunner in multi-processing mode with 2 workers (each loading the model once): the same files,
    bit for bit, as the folder mode, and a manifest line for each input."""
    proc = run_module(["-m", "wavegrad_tf.beam", "--model", str(tiny_run), "--input", str(corpus), "--output",
                       str(tmp_path / "beam"), "--seed", "5", "--runner", "DirectRunner", "--direct_num_workers", "2",
                       "--direct_running_mode", "multi_processing"], timeout=900)
    assert f"wrote {tmp_path / 'beam'}/manifest.jsonl" in proc.stdout
    beam, folder = outputs(tmp_path / "beam"), outputs(whole)
    assert sorted(beam) == sorted(folder) and all(np.array_equal(beam[k], folder[k]) for k in folder)
    lines = [json.loads(line) for line in (tmp_path / "beam" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(line["file"] for line in lines) == sorted(KEYS)
