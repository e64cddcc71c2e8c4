import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import SPEECH, TFLITE_SIZES as SIZES, run_module
from export.tflite import VARIANTS
from wavegrad_tf.runtime import InputError, MetadataError
from wavegrad_tf.vocoders import load_vocoder
from wavegrad_tf.vocoders.litert import DYNAMIC_SHAPE_OPS, FORBIDDEN_OPS, LiteRTVocoder



@pytest.fixture(scope="module")
def tflite_dir(tiny_tflite):
    return tiny_tflite


def test_every_graph_is_static_builtin_only_with_no_variables(tflite_dir):
    """Builtins, no variables, and none of the ops a dynamic frame axis leaves (unfolded dilated convolutions,
    shape arithmetic): dilated convolutions are CONV_2D with dilation; every tensor has a static shape."""
    from ai_edge_litert.interpreter import Interpreter

    for name in VARIANTS:
        graph = Interpreter(model_path=str(tflite_dir / f"{name}.tflite"))  # inspected, never run
        ops = sorted({op["op_name"] for op in graph._get_ops_details()})
        assert "CONV_2D" in ops and not [op for op in ops if any(bad in op for bad in FORBIDDEN_OPS)], (name, ops)
        assert not set(ops) & set(DYNAMIC_SHAPE_OPS), (name, ops)
        assert LiteRTVocoder(tflite_dir / f"{name}.tflite").sizes == SIZES
        for tensor in graph.get_tensor_details():
            assert -1 not in tensor["shape_signature"], (name, tensor["name"])


def test_float_graphs_run_wholly_in_xnnpack(tflite_dir):
    """LiteRT's own verdict after compiling for the CPU: every op of the float graphs is delegated to XNNPACK.
    The full int8 graph is not (XNNPACK leaves some of its quantized ops to LiteRT's own kernels): the check
    can fail."""
    verdicts = {}
    for name in VARIANTS:
        vocoder = LiteRTVocoder(tflite_dir / f"{name}.tflite")
        verdicts[name] = vocoder.model.is_fully_accelerated()
    assert verdicts["float32"] and verdicts["float16"] and not verdicts["full_int8"], verdicts


@pytest.fixture(scope="module")
def long_mel(speech, tiny_model_and_mel):
    from wavegrad_tf.mel import log_mel_spectrogram

    return log_mel_spectrogram(speech, tiny_model_and_mel[0].audio, use_tf=False)


def test_float32_matches_keras_sampler_with_the_same_noise(tiny_run, tflite_dir, tiny_model_and_mel, long_mel):
    """Under the run's PriorGrad prior, relative L2 <= 1e-4 against the Keras sampler fed the same
    position-keyed noise in the same chunks."""
    cfg = tiny_model_and_mel[0]
    keras_vocoder = load_vocoder(tiny_run)
    lite = load_vocoder(tflite_dir / "float32.tflite")
    mel = long_mel[:SIZES[0] + SIZES[1] - lite.overlap_frames]  # two chunks that fill their signatures exactly
    keras_vocoder.first_chunk_frames, keras_vocoder.chunk_frames = SIZES
    keras_audio, lite_audio = keras_vocoder.vocode(mel, seed=3), lite.vocode(mel, seed=3)
    assert np.linalg.norm(lite_audio - keras_audio) / np.linalg.norm(keras_audio) <= 1e-4
    assert lite.metadata.audio == cfg.audio and lite.metadata.betas == keras_vocoder.metadata.betas


def test_static_chunks_equal_the_dynamic_path_away_from_the_padded_end(tiny_run, tflite_dir, tiny_model_and_mel,
                                                                       long_mel):
    """A mel whose last chunk is padded to a static size: equal to the Keras path (1e-4 relative) except in the
    last 10 frames, where the padding is within the network's reach."""
    hop = tiny_model_and_mel[0].audio.hop_length
    keras_vocoder, lite = load_vocoder(tiny_run), load_vocoder(tflite_dir / "float32.tflite")
    keras_vocoder.first_chunk_frames, keras_vocoder.chunk_frames = SIZES
    mel = long_mel[:200]  # chunks [0, 72), [40, 160), [128, 200): the last runs padded in the 72-frame signature
    keras_audio, lite_audio = keras_vocoder.vocode(mel, seed=5), lite.vocode(mel, seed=5)
    away = slice(0, (len(mel) - 10) * hop)
    assert np.linalg.norm(lite_audio[away] - keras_audio[away]) / np.linalg.norm(keras_audio[away]) <= 1e-4
    assert len(lite_audio) == len(keras_audio) == len(mel) * hop


def test_runner_gives_what_the_plain_interpreter_gives_in_every_variant(tflite_dir, long_mel):
    """The runner (CompiledModel with XNNPACK's weight cache) against LiteRT's Interpreter (no cache), same mel
    and noise: 1e-5 relative in every variant. The cache packs a weight once for the six unrolled steps; in the
    full int8 graph packing depends on each step's input quantization, and the shared packing made the
    pretrained model's full int8 audio twice too loud."""
    from ai_edge_litert.interpreter import Interpreter

    from wavegrad_tf.runtime import PositionalNoise

    mel = long_mel[:SIZES[0]]
    for name in VARIANTS:
        vocoder = LiteRTVocoder(tflite_dir / f"{name}.tflite")
        got = vocoder.synthesize(mel, 0, PositionalNoise(0))
        noise = PositionalNoise(0).per_step(vocoder.metadata.iterations, 0, len(got))
        plain = Interpreter(model_path=str(tflite_dir / f"{name}.tflite")).get_signature_runner(f"frames_{SIZES[0]}")
        want = next(iter(plain(mel=mel[None].astype(np.float32), noise=noise).values()))[0]
        assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want), (name, np.linalg.norm(got - want))


def test_quantized_variants_run_any_length(tflite_dir, long_mel):
    for name in VARIANTS:
        vocoder = LiteRTVocoder(tflite_dir / f"{name}.tflite")
        for frames in (7, 100, 230):
            audio = vocoder.vocode(long_mel[:frames])
            assert audio.shape == (frames * vocoder.metadata.audio.hop_length,) and np.isfinite(audio).all(), name


def test_runner_checks_input_before_invoke(tflite_dir):
    vocoder = LiteRTVocoder(tflite_dir / "float16.tflite")
    for bad, message in ((np.zeros((10, 80), np.float32), "64 mel bins"), (np.zeros((0, 64), np.float32), "frame"),
                         (np.full((5, 64), np.inf, np.float32), "NaN or inf"),
                         (np.full((5, 64), 1e30, np.float32), "expected log-mel features in")):
        with pytest.raises(InputError, match=message):
            vocoder.vocode(bad)


def test_metadata_from_another_export_or_malformed_is_named(tflite_dir, tmp_path):
    model = tmp_path / "float16.tflite"
    shutil.copy(tflite_dir / "float16.tflite", model)
    meta = json.loads((tflite_dir / "wavegrad.json").read_text())
    (tmp_path / "wavegrad.json").write_text(json.dumps({**meta, "audio": {**meta["audio"], "n_mels": 80}}))
    with pytest.raises(MetadataError, match="says 80 mel bins, but float16.tflite takes 64"):
        LiteRTVocoder(model)
    (tmp_path / "wavegrad.json").write_text(json.dumps({**meta, "chunk_frames": [32]}))
    with pytest.raises(MetadataError, match=r"lists chunk sizes \[32\], but float16.tflite has signatures"):
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
