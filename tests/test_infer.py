import numpy as np
import pytest
import soundfile as sf

from conftest import SPEECH, run_module
from wavegrad_tf import diffusion, infer
from wavegrad_tf.mel import log_mel_spectrogram


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    return infer.load_model(tiny_run)


def test_load_model_restores_every_weight(tiny_run, tiny_model):
    import tensorflow as tf

    cfg, model = tiny_model
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tiny_run / "checkpoints")))
    from wavegrad_tf.model import checkpoint_variables

    for name, var in checkpoint_variables(model).items():
        key = "model/" + name.replace("/", ".S") + "/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_array_equal(np.asarray(var), reader.get_tensor(key))


def test_cli_vocodes_wav_and_npy(tiny_run, tmp_path, speech):
    cfg, _ = infer.load_model(tiny_run)
    wav_out, npy_out = tmp_path / "from_wav.wav", tmp_path / "from_npy.wav"
    run_module(["-m", "wavegrad_tf.infer", "--model_dir", str(tiny_run), "--input", str(SPEECH[1]),
                "--output", str(wav_out), "--seed", "1"])
    audio, sr = sf.read(wav_out)
    assert sr == 16000 and len(audio) == sf.info(SPEECH[1]).frames
    mel = log_mel_spectrogram(speech[:8000], cfg.audio).numpy()
    np.save(tmp_path / "mel.npy", mel)
    out = run_module(["-m", "wavegrad_tf.infer", "--model_dir", str(tiny_run), "--input", str(tmp_path / "mel.npy"),
                      "--output", str(npy_out), "--iterations", "25"])
    assert "25 iterations" in out.stdout
    assert len(sf.read(npy_out)[0]) == mel.shape[0] * cfg.audio.hop_length


def test_seed_makes_output_reproducible(tiny_model, speech):
    cfg, model = tiny_model
    mel = log_mel_spectrogram(speech[:6000], cfg.audio).numpy()
    betas = diffusion.get_schedule("manual-6")
    a, b = (infer.vocode(model, cfg, mel, betas, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, infer.vocode(model, cfg, mel, betas, seed=5))


def test_chunked_equals_whole_away_from_seams_without_clicks(tiny_model, speech):
    """Chunks of 60 frames overlapping by 24 vs one pass, same noise: outside the overlaps the output is
    equal (<= 1e-5), inside within 1e-3; no click: the largest sample-to-sample step at a seam is no
    larger than 1.05x the largest step of the whole pass."""
    cfg, model = tiny_model
    mel = log_mel_spectrogram(speech, cfg.audio).numpy()
    betas = diffusion.get_schedule("manual-6")
    whole = infer.vocode(model, cfg, mel, betas, seed=2, chunk_frames=len(mel))
    chunked = infer.vocode(model, cfg, mel, betas, seed=2, chunk_frames=60, overlap_frames=24)
    hop, step = cfg.audio.hop_length, 60 - 24
    seams = np.zeros(len(whole), bool)
    for begin in range(step, len(mel) - 24, step):
        seams[begin * hop:(begin + 24) * hop] = True
    assert 0.2 < seams.mean() < 0.8
    np.testing.assert_allclose(chunked[~seams], whole[~seams], atol=1e-5)
    np.testing.assert_allclose(chunked[seams], whole[seams], atol=1e-3)
    assert np.max(np.abs(np.diff(chunked[seams]))) <= 1.05 * np.max(np.abs(np.diff(whole)))


@pytest.mark.parametrize("mel, message", [
    (np.zeros((10, 80), np.float32), "expected 64 mel bins in the last axis"),
    (np.zeros((64, 10), np.float32), "looks transposed"),
    (np.zeros((1, 10, 64), np.float32), "expected a 2-D log-mel"),
    (np.zeros((0, 64), np.float32), "at least one frame"),
    (np.full((10, 64), np.nan, np.float32), "NaN or inf"),
    (np.zeros((10, 64), np.int32), "expected a float array"),
])
def test_bad_mel_gets_a_clear_error(tiny_model, mel, message):
    cfg, model = tiny_model
    with pytest.raises(ValueError, match=message):
        infer.vocode(model, cfg, mel, diffusion.get_schedule("manual-6"))


def test_cli_errors_name_the_problem(tiny_run, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((10, 80), np.float32))
    out = run_module(["-m", "wavegrad_tf.infer", "--model_dir", str(tiny_run), "--input", str(tmp_path / "bad.npy"),
                      "--output", str(tmp_path / "o.wav")], check=False)
    assert out.returncode != 0 and "bad.npy: expected 64 mel bins" in out.stderr
    out = run_module(["-m", "wavegrad_tf.infer", "--model_dir", str(tmp_path), "--input", str(SPEECH[0]),
                      "--output", str(tmp_path / "o.wav")], check=False)
    assert out.returncode != 0 and "no config.yaml" in out.stderr
    with pytest.raises(ValueError, match="no preset has that many steps"):
        infer.schedule_for(infer.load_model(tiny_run)[0], iterations=7)


def test_ten_minute_input_runs_in_bounded_memory(tiny_model):
    """10 minutes of mel, 1 iteration: peak RSS grows by less than 1 GiB (the whole output is 38 MB)."""
    import resource

    cfg, model = tiny_model
    frames = 10 * 60 * cfg.audio.sample_rate // cfg.audio.hop_length
    mel = np.random.default_rng(0).normal(-5, 2, (frames, cfg.audio.n_mels)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    audio = infer.vocode(model, cfg, mel, np.array([0.5]), seed=0, chunk_frames=2000)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(audio) == frames * cfg.audio.hop_length and np.isfinite(audio).all()
    assert grown_mib < 1024, grown_mib


def test_discrete_index_variant_trains_and_samples_with_its_schedule(tmp_path, monkeypatch):
    from conftest import TINY
    from wavegrad_tf import train

    train.run(TINY, str(tmp_path), steps=3, overrides=["diffusion.continuous=false",
                                                       "diffusion.train_schedule=linear-50"])
    cfg, model = infer.load_model(tmp_path)
    betas = infer.schedule_for(cfg)
    np.testing.assert_array_equal(betas, diffusion.get_schedule("linear-50"))
    with pytest.raises(ValueError, match="samples only with its training schedule"):
        infer.schedule_for(cfg, schedule="manual-6")
    seen = []
    original = diffusion.sample

    def spy(*args, **kwargs):
        seen.append(kwargs["conditioning"])
        return original(*args, **kwargs)

    monkeypatch.setattr(diffusion, "sample", spy)
    audio = infer.vocode(model, cfg, np.zeros((5, 64), np.float32), betas, seed=0)
    assert audio.shape == (5 * cfg.audio.hop_length,)  # a 3-step model's values mean nothing
    np.testing.assert_allclose(seen[0], np.arange(1, 51) / 50)
