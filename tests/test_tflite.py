import json

import numpy as np
import pytest

from conftest import SPEECH, run_module
from export.tflite import VARIANTS, export_tflite
from wavegrad_tf.runtime import InputError, MetadataError
from wavegrad_tf.vocoders import load_vocoder
from wavegrad_tf.vocoders.litert import FORBIDDEN_OPS, LiteRTVocoder


@pytest.fixture(scope="module")
def tflite_dir(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    export_tflite(tiny_run, out, calibration_frames=20)
    return out


def test_every_graph_is_builtin_only_with_no_variables(tflite_dir):
    for name in (*VARIANTS, "float32_noise_input"):
        ops = LiteRTVocoder(tflite_dir / f"{name}.tflite").op_names()
        assert ops and not [op for op in ops if any(bad in op for bad in FORBIDDEN_OPS)], (name, ops)
    assert "RANDOM_STANDARD_NORMAL" in LiteRTVocoder(tflite_dir / "float32.tflite").op_names()


def test_float32_matches_keras_sampler_with_the_same_noise(tiny_run, tflite_dir, tiny_model_and_mel):
    """Under the run's PriorGrad prior, relative L2 <= 1e-4 against the Keras sampler fed the same
    position-keyed noise, in the same chunks."""
    cfg, _, mel = tiny_model_and_mel
    keras_vocoder = load_vocoder(tiny_run)
    lite = load_vocoder(tflite_dir / "float32_noise_input.tflite")
    keras_vocoder.chunk_frames = lite.chunk_frames
    keras_audio, lite_audio = keras_vocoder.vocode(mel, seed=3), lite.vocode(mel, seed=3)
    assert np.linalg.norm(lite_audio - keras_audio) / np.linalg.norm(keras_audio) <= 1e-4
    assert lite.metadata.audio == cfg.audio and lite.metadata.betas == keras_vocoder.metadata.betas


def test_dynamic_frame_axis_and_quantized_variants_run(tflite_dir, tiny_model_and_mel):
    _, _, mel = tiny_model_and_mel
    for name in VARIANTS:
        vocoder = LiteRTVocoder(tflite_dir / f"{name}.tflite")
        for frames in (7, 33):
            audio = vocoder.vocode(mel[:frames])
            assert audio.shape == (frames * vocoder.metadata.audio.hop_length,) and np.isfinite(audio).all(), name


def test_runner_checks_input_before_invoke(tflite_dir):
    vocoder = LiteRTVocoder(tflite_dir / "float16.tflite")
    for bad, message in ((np.zeros((10, 80), np.float32), "64 mel bins"), (np.zeros((0, 64), np.float32), "frame"),
                         (np.full((5, 64), np.inf, np.float32), "NaN or inf"),
                         (np.full((5, 64), 1e30, np.float32), "expected log-mel features in")):
        with pytest.raises(InputError, match=message):
            vocoder.vocode(bad)


def test_metadata_from_another_export_or_malformed_is_named(tflite_dir, tmp_path):
    import shutil

    model = tmp_path / "float16.tflite"
    shutil.copy(tflite_dir / "float16.tflite", model)
    meta = json.loads((tflite_dir / "wavegrad.json").read_text())
    meta["audio"]["n_mels"] = 80
    (tmp_path / "wavegrad.json").write_text(json.dumps(meta))
    with pytest.raises(MetadataError, match="says 80 mel bins, but float16.tflite takes 64"):
        LiteRTVocoder(model)
    (tmp_path / "wavegrad.json").write_text("{not json")
    with pytest.raises(MetadataError, match=r"wavegrad.json: not JSON"):
        LiteRTVocoder(model)


def test_infer_cli_runs_a_tflite_file_without_tensorflow(tflite_dir, tmp_path):
    """The vocoding CLI imports, analyses a wav and vocodes it with TensorFlow made unimportable."""
    script = (f"import sys; sys.modules['tensorflow'] = None; sys.argv = ['infer', '--model', "
              f"'{tflite_dir / 'float16.tflite'}', '--input', '{SPEECH[2]}', '--output', '{tmp_path / 'o.wav'}'];"
              "from wavegrad_tf import cli, infer; infer.define_flags(); cli.run(infer.main)")
    out = run_module(["-c", script])
    assert "wrote" in out.stdout
    import soundfile as sf

    assert sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[2]).frames


def test_evaluator_scores_a_tflite_file_on_an_audio_folder(tflite_dir, tmp_path):
    from wavegrad_tf import evaluate

    model = tflite_dir / "float16.tflite"
    with pytest.raises(ValueError, match="pass --audio_dir"):
        evaluate.evaluate(model, tmp_path / "no_clips")
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in SPEECH[:2]:
        (clips / path.name).write_bytes(path.read_bytes())
    results = evaluate.evaluate(model, tmp_path / "eval", audio_dir=clips, griffin_lim_iterations=4,
                                metric_names=["log_mel_l1", "stoi"])
    assert results["vocoder"].startswith("WaveGrad float16 TFLite") and len(results["files"]) == 2
    assert all(0 < r["systems"]["wavegrad"]["stoi"] <= 1 for r in results["files"])
