import csv
import json
import shutil

import numpy as np
import pytest

from conftest import SPEECH, run_module
from wavegrad_tf import evaluate_lib, mel, metrics
from wavegrad_tf.vocoders import load_vocoder
from wavegrad_tf.vocoders.griffin_lim import GriffinLim


def test_cli_writes_every_output_for_a_trained_run(tiny_run, tmp_path):
    out = tmp_path / "eval"
    run_module(["-m", "wavegrad_tf.evaluate", "--model", str(tiny_run), "--output", str(out), "--max_files", "2",
                "--plot_files", "2", "--griffin_lim_iterations", "8"])
    results = json.loads((out / "results.json").read_text())
    assert len(results["files"]) == 2 and results["missing"] == {} and results["betas"] is not None
    for row in results["files"]:
        for system in ("wavegrad", "griffin_lim"):
            assert all(np.isfinite(row["systems"][system][name]) for name in metrics.METRICS), row
        truth = row["systems"]["ground_truth"]
        assert truth["log_mel_l1"] is None and 1 <= truth["dnsmos_ovrl"] <= 5
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and {r["system"] for r in table} == set(evaluate_lib.SYSTEMS)
    summary = (out / "summary.md").read_text()
    assert all(m.label in summary for m in metrics.METRICS.values())
    assert (out / "spectrograms.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "audio").glob("*.wav"))) == 4


def test_missing_metric_package_is_reported_not_dropped(tiny_run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pystoi" else real(name, *a))
    results = evaluate_lib.evaluate(tiny_run, tmp_path, max_files=1, griffin_lim_iterations=4,
                                metric_names=["log_mel_l1", "stoi"])
    assert results["missing"] == {"stoi": "missing: pip install pystoi"}
    assert "stoi" not in results["files"][0]["systems"]["wavegrad"]
    assert "| stoi | | missing: pip install pystoi |" in (tmp_path / "summary.md").read_text()


def test_bad_file_is_skipped_and_listed(tiny_run, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(SPEECH[0], clips / "good.flac")
    (clips / "broken.wav").write_bytes(b"RIFF....WAVEfmt not really")
    results = evaluate_lib.evaluate(tiny_run, tmp_path / "eval", audio_dir=clips, griffin_lim_iterations=4,
                                    metric_names=["log_mel_l1"], plot_files=0)
    assert [r["file"] for r in results["files"]] == [str(clips / "good.flac")]
    assert (tmp_path / "eval" / "summary.md").exists() and not (tmp_path / "eval" / "spectrograms.png").exists()
    assert results["skipped"][0]["file"] == str(clips / "broken.wav")
    assert results["skipped"][0]["reason"].startswith("corrupt")


def test_exported_graphs_refuse_a_schedule(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"")
    with pytest.raises(ValueError, match="baked in"):
        load_vocoder(tmp_path / "model.tflite", schedule="manual-6")


def test_an_empty_audio_dir_is_named_as_such(tiny_run, tmp_path):
    (tmp_path / "empty").mkdir()
    out = run_module(["-m", "wavegrad_tf.evaluate", "--model", str(tiny_run), "--audio_dir", str(tmp_path / "empty"),
                      "--output", str(tmp_path / "eval")], check=False)
    assert out.returncode == 2 and f"--audio_dir {tmp_path / 'empty'}: no .wav/.flac/.ogg files" in out.stderr


def test_griffin_lim_reconstructs_the_mel_it_is_given(speech, tiny_cfg):
    audio = speech[:32000]
    features = mel.log_mel_spectrogram(audio, tiny_cfg.audio, use_tf=False)
    out = GriffinLim(tiny_cfg.audio, iterations=32).vocode(features, seed=0)
    assert out.shape == (len(features) * tiny_cfg.audio.hop_length,)
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * audio.std()

    def distance(x):
        return mel.log_mel_l1(x, audio, tiny_cfg.audio, use_tf=False)

    # Well under the 1.4 that noise 20 dB below the speech costs (tests/test_metrics.py's case).
    assert distance(out) < 0.3 < distance(noise)


def test_tts_like_mels_are_smoothed_wrong_and_shifted_but_plausible(speech, tiny_cfg):
    """tts_like: deterministic per seed, the mel's shape and range; smoother than the recording's mel (less energy in
    frame-to-frame differences), and off it by about the noise and blur it adds."""
    from wavegrad_tf.tts_like import tts_like

    exact = mel.log_mel_spectrogram(speech[:32000], tiny_cfg.audio, use_tf=False)
    like = tts_like(exact, seed=3)
    assert like.shape == exact.shape and like.dtype == np.float32
    np.testing.assert_array_equal(like, tts_like(exact, seed=3))
    assert not np.array_equal(like, tts_like(exact, seed=4))
    assert exact.min() <= like.min() and like.max() <= exact.max()
    assert np.mean(np.abs(np.diff(like, axis=0))) < 0.6 * np.mean(np.abs(np.diff(exact, axis=0)))
    assert 0.1 < np.mean(np.abs(like - exact)) < 1.0


def test_evaluate_on_tts_like_mels_scores_against_the_recording(tiny_run, tmp_path):
    """--mel tts_like: every vocoder gets the TTS-like mel (Griffin-Lim too), scored against the recording: both
    further from it than from the exact mel; --griffin_lim_iterations 0 leaves the baseline out."""
    names = ["log_mel_l1"]
    exact = evaluate_lib.evaluate(tiny_run, tmp_path / "exact", max_files=2, metric_names=names, plot_files=0)
    like = evaluate_lib.evaluate(tiny_run, tmp_path / "like", max_files=2, metric_names=names, plot_files=0,
                                 mel="tts_like")
    assert like["mel"] == "tts_like" and exact["mel"] == "exact"
    for system in ("wavegrad", "griffin_lim"):
        assert like["mean"][system]["log_mel_l1"] > exact["mean"][system]["log_mel_l1"], system
    alone = evaluate_lib.evaluate(tiny_run, tmp_path / "alone", max_files=1, metric_names=names, plot_files=0,
                                  griffin_lim_iterations=0)
    assert set(alone["mean"]) == {"wavegrad", "ground_truth"}
