import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SPEECH, TF_LOADED, TF_VERBOSE, run_module
from wavegrad_tf import diffusion, schedules
from wavegrad_tf.config import Consistency
from wavegrad_tf.mel import log_mel_spectrogram
from wavegrad_tf.model import build_model, load_network
from wavegrad_tf.runs import Run, checkpoint_variables
from wavegrad_tf.runtime import InputError, check_mel
from wavegrad_tf.runtime.inputs import log_mel_blocks
from wavegrad_tf.vocoders import load_vocoder
from wavegrad_tf.vocoders.checkpoint import KerasVocoder

LAUNCHER = "import sys; sys.argv[0] = {!r}; from wavegrad_tf.cli import entry; entry()"  # what pip's script runs


def test_a_run_loads_into_a_fresh_model_with_its_averaged_weights(tiny_run):
    """Every weight of the loaded model equals the checkpoint's weight average (the run trains with EMA),
    which differs from the raw weights; a fresh model differs from both."""
    from wavegrad_tf.trainer import Trainer

    run = Run.open(tiny_run)
    cfg, model = run.config, load_network(run)
    trainer = Trainer(cfg, tiny_run)  # restores weights, average and step from the same checkpoint
    assert trainer.ema and trainer.global_step == 150
    fresh = checkpoint_variables(build_model(cfg))
    raw = checkpoint_variables(trainer.network)
    for path, var in checkpoint_variables(model).items():
        np.testing.assert_array_equal(np.asarray(var), trainer.ema[path].numpy())
    kernels = [p for p in raw if p.endswith("kernel")]
    assert max(np.abs(np.asarray(checkpoint_variables(model)[p]) - np.asarray(raw[p])).max() for p in kernels) > 1e-5
    assert max(np.abs(np.asarray(checkpoint_variables(model)[p]) - np.asarray(fresh[p])).max() for p in kernels) > 1e-3


def test_cli_vocodes_wav_and_npy(tiny_run, tmp_path, speech):
    """A wav through `wavegrad-infer` run as a user runs it (pip's launcher, no TF_CPP_MIN_LOG_LEVEL of their own):
    TensorFlow loads and the command prints its report alone, no C++ log line (I/W/E + date), no oneDNN notice,
    nothing repeated. Then a .npy mel through `python -m wavegrad_tf.infer`."""
    import re

    cfg = Run.open(tiny_run).config
    wav_out, npy_out = tmp_path / "from_wav.wav", tmp_path / "from_npy.flac"
    sf.write(tmp_path / "in.wav", speech[:32000], 16000)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", LAUNCHER.format("wavegrad-infer"), "--model", str(tiny_run),
                          "--input", str(tmp_path / "in.wav"), "--output", str(wav_out), "--seed", "1"],
                         capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    audio, sr = sf.read(wav_out)
    assert sr == 16000 and len(audio) == 32000 and audio.std() > 0
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert any("wrote" in line for line in lines), lines
    noise = [line for line in lines if re.match(r"[IWEF]\d{4} ", line) or "oneDNN" in line or TF_LOADED in line]
    assert not noise, noise
    assert len(lines) == len(set(lines)), lines
    assert not any(line.startswith("consistency:") for line in lines) and "mel consistency" in out.stdout
    mel = log_mel_spectrogram(speech[:8000], cfg.audio, use_tf=False)
    np.save(tmp_path / "mel.npy", mel)
    out = run_module(["-m", "wavegrad_tf.infer", "--model", str(tiny_run), "--input", str(tmp_path / "mel.npy"),
                      "--output", str(npy_out), "--iterations", "25"])
    assert "25 iterations" in out.stdout
    # a .npy is a mel from elsewhere: the run's projection (mel) is left out, and the command says why
    assert "consistency: none (.npy mels, as a TTS model makes them" in out.stdout and "mel consistency" not in out.stdout
    assert len(sf.read(npy_out)[0]) == mel.shape[0] * cfg.audio.hop_length
    assert not list(tmp_path.glob(".*partial"))


def test_one_infer_of_a_run_reads_its_config_once_and_resolves_its_name_once(tiny_run, tmp_path, speech,
                                                                             monkeypatch):
    """--model resolved once into a source, its config.yaml parsed once, whatever checks, loads and writes follow."""
    from wavegrad_tf import config, pretrained
    from wavegrad_tf.infer_lib import vocode_file

    counts = {"config reads": 0, "name resolutions": 0}

    def counted(module, name, key):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            counts[key] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    counted(config, "_read_yaml", "config reads")
    counted(pretrained, "folder", "name resolutions")
    sf.write(tmp_path / "in.wav", speech[:16000], 16000)
    vocode_file(str(tiny_run), str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), seed=0)
    assert sf.info(tmp_path / "out.wav").frames == 16000
    assert counts == {"config reads": 1, "name resolutions": 1}


def test_seed_makes_output_reproducible(tiny_vocoder, speech):
    mel = log_mel_spectrogram(speech[:6000], tiny_vocoder.metadata.audio, use_tf=False)
    a, b = (tiny_vocoder.vocode(mel, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, tiny_vocoder.vocode(mel, seed=5))


def test_chunked_equals_whole_away_from_seams_without_clicks(tiny_run, speech):
    """Chunks of 60 frames overlapping by 24 vs one pass, same noise: outside the overlaps the output is
    equal (<= 1e-5), inside within 1e-3; no click: the largest sample-to-sample step at a seam is no
    larger than 1.05x the largest step of the whole pass."""
    vocoder = KerasVocoder.from_run(tiny_run)
    hop = vocoder.metadata.audio.hop_length
    mel = log_mel_spectrogram(speech, vocoder.metadata.audio, use_tf=False)
    vocoder.chunk_frames = len(mel)
    whole = vocoder.vocode(mel, seed=2)
    vocoder.chunk_frames, vocoder.overlap_frames = 60, 24
    chunked = vocoder.vocode(mel, seed=2)
    step = 60 - 24
    seams = np.zeros(len(whole), bool)
    for begin in range(step, len(mel) - 24, step):
        seams[begin * hop:(begin + 24) * hop] = True
    assert 0.2 < seams.mean() < 0.8
    np.testing.assert_allclose(chunked[~seams], whole[~seams], atol=1e-5)
    np.testing.assert_allclose(chunked[seams], whole[seams], atol=1e-3)
    within = seams[1:] & seams[:-1]  # steps between two samples of one seam
    assert np.max(np.abs(np.diff(chunked))[within]) <= 1.05 * np.max(np.abs(np.diff(whole)))


def test_stream_yields_the_whole_call_piece_by_piece(tiny_run, speech):
    """Pieces come out as chunks finish (a small first chunk, then full ones), join to exactly `vocode`'s
    output, and a mel that arrives in blocks gives the same audio as the array."""
    vocoder = KerasVocoder.from_run(tiny_run)
    vocoder.chunk_frames, vocoder.overlap_frames, vocoder.first_chunk_frames = 100, 16, 40
    hop = vocoder.metadata.audio.hop_length
    mel = log_mel_spectrogram(speech, vocoder.metadata.audio, use_tf=False)
    pieces = list(vocoder.stream(mel, seed=3))
    assert len(pieces) == 1 + -(-(len(mel) - 40) // (100 - 16)) and len(pieces[0]) == (40 - 16) * hop
    np.testing.assert_array_equal(np.concatenate(pieces), vocoder.vocode(mel, seed=3))
    blocks = (mel[i:i + 37] for i in range(0, len(mel), 37))
    np.testing.assert_array_equal(vocoder.vocode(blocks, seed=3), vocoder.vocode(mel, seed=3))


def test_streamed_analysis_equals_the_whole_clip_front_end(speech, tiny_cfg):
    """log_mel_blocks over blocks of 777 samples gives the frames of the whole-clip front end, in blocks of at
    most 50 frames."""
    a = tiny_cfg.audio
    blocks = list(log_mel_blocks((speech[i:i + 777] for i in range(0, len(speech), 777)), a, block_frames=50))
    assert max(len(b) for b in blocks) == 50
    np.testing.assert_allclose(np.concatenate(blocks), log_mel_spectrogram(speech, a, use_tf=False), atol=1e-5)


@pytest.mark.parametrize("mel, message", [
    (np.zeros((10, 80), np.float32), "expected 64 mel bins in the last axis"),
    (np.zeros((64, 10), np.float32), "looks transposed"),
    (np.zeros((1, 10, 64), np.float32), "expected a 2-D log-mel"),
    (np.zeros((0, 64), np.float32), "at least one frame"),
    (np.full((10, 64), np.nan, np.float32), "NaN or inf"),
    (np.zeros((10, 64), np.int32), "expected a float array"),
    (np.full((10, 64), 1e30, np.float32), "values from 1e\\+30 to 1e\\+30, expected log-mel features in"),
    (np.full((10, 64), -100, np.float32), "is it scaled another way"),
])
def test_bad_mel_gets_a_clear_error(tiny_vocoder, mel, message):
    with pytest.raises(InputError, match=message):
        tiny_vocoder.vocode(mel)


def test_cli_errors_are_one_line_and_come_before_the_model_loads(tiny_run, tmp_path):
    """Exit status 2, the error as the last line of stderr, no traceback, and TensorFlow never imported (its
    import prints its CPU notice at TF_CPP_MIN_LOG_LEVEL=0): nothing was loaded before the input was refused."""
    np.save(tmp_path / "bad.npy", np.zeros((10, 80), np.float32))
    cases = [
        (["--input", str(tmp_path / "bad.npy")], "bad.npy: expected 64 mel bins"),
        (["--input", str(SPEECH[0]), "--output", str(tmp_path / "nowhere" / "o.wav")], "does not exist"),
        (["--input", str(tmp_path)], "names many files; expected a folder to write them into"),
        (["--model", str(tmp_path)], "neither a training run's folder nor a SavedModel"),
        (["--iterations", "7"], "no preset has that many steps"),
    ]
    for extra, message in cases:
        args = {"--model": str(tiny_run), "--input": str(SPEECH[0]), "--output": str(tmp_path / "o.wav")}
        args.update(dict(zip(extra[::2], extra[1::2])))
        out = run_module(["-m", "wavegrad_tf.infer", *[x for kv in args.items() for x in kv]], env=TF_VERBOSE,
                         check=False)
        assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1], (extra, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and TF_LOADED not in out.stderr, out.stderr[-2000:]


def test_discrete_index_variant_trains_and_samples_with_its_schedule(tmp_path):
    from conftest import TINY
    from wavegrad_tf import train_lib

    train_lib.run(TINY, str(tmp_path), steps=3, overrides=["diffusion.continuous=false", "diffusion.prior=standard",
                                                       "diffusion.train_schedule=linear-50"])
    vocoder = KerasVocoder.from_run(tmp_path)
    np.testing.assert_array_equal(vocoder.metadata.betas, schedules.get_schedule("linear-50"))
    with pytest.raises(schedules.ScheduleError, match="samples only with its training schedule"):
        load_vocoder(str(tmp_path), schedule="manual-6")
    audio = vocoder.vocode(np.full((5, 64), -5, np.float32), seed=0)
    assert audio.shape == (5 * vocoder.metadata.audio.hop_length,)  # a 3-step model's values mean nothing
    seen = []

    def spy(y, mel, model_input):  # what the sampler every backend uses gives the network at each step
        seen.append(float(model_input[0]))
        return vocoder.network([y, mel, model_input])

    diffusion.Sampler(spy, vocoder.cfg, vocoder.metadata.betas, Consistency())(np.full((1, 5, 64), -5, np.float32))
    np.testing.assert_allclose(seen, np.arange(50, 0, -1) / 50, rtol=1e-6)


def test_check_mel_passes_real_features(tiny_cfg, speech):
    mel = log_mel_spectrogram(speech, tiny_cfg.audio, use_tf=False)
    assert check_mel(mel.astype(np.float64), tiny_cfg.audio).dtype == np.float32



def test_a_console_script_lists_its_command_s_flags_without_loading_tensorflow():
    """`wavegrad-infer --help` shows infer's own flags (--input, --output, --batch_size) beside the shared ones: the
    launcher, not the command, is the main module of a console script."""
    from wavegrad_tf import cli

    out = run_module(["-c", LAUNCHER.format("/venv/bin/wavegrad-infer"), "--help"], env=TF_VERBOSE, check=False)
    listed = {line.split(":")[0].strip() for line in out.stdout.splitlines() if line.startswith("  --")}
    assert {"--input", "--output", "--batch_size", "--model", "--seed", "--consistency"} <= listed, out.stdout
    assert TF_LOADED not in out.stderr
    assert set(cli.COMMANDS) >= {"wavegrad-train", "wavegrad-infer", "wavegrad-export-tflite"}

