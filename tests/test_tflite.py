import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import SPEECH, TFLITE_SIZES as SIZES, run_module, tflite_files
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

    for name, path in tflite_files(tflite_dir).items():
        graph = Interpreter(model_path=str(path))  # inspected, never run
        ops = sorted({op["op_name"] for op in graph._get_ops_details()})
        assert "CONV_2D" in ops and not [op for op in ops if any(bad in op for bad in FORBIDDEN_OPS)], (name, ops)
        assert not set(ops) & set(DYNAMIC_SHAPE_OPS), (name, ops)
        assert LiteRTVocoder(path).sizes == SIZES
        for tensor in graph.get_tensor_details():
            assert -1 not in tensor["shape_signature"], (name, tensor["name"])


def test_float_graphs_run_wholly_in_xnnpack(tflite_dir):
    """LiteRT's own verdict after compiling for the CPU: every op of the float graphs is delegated to XNNPACK.
    The full int8 graph is not (XNNPACK leaves some of its quantized ops to LiteRT's own kernels): the check
    can fail."""
    verdicts = {}
    for name, path in tflite_files(tflite_dir).items():
        verdicts[name] = LiteRTVocoder(path).compiled.is_fully_accelerated()
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
    for name, path in tflite_files(tflite_dir).items():
        vocoder = LiteRTVocoder(path)
        got = vocoder.synthesize(mel, 0, PositionalNoise(0))
        noise = PositionalNoise(0).per_step(vocoder.metadata.iterations, 0, len(got))
        plain = Interpreter(model_path=str(path)).get_signature_runner(f"frames_{SIZES[0]}")
        want = next(iter(plain(mel=mel[None].astype(np.float32), noise=noise).values()))[0]
        assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want), (name, np.linalg.norm(got - want))


def test_quantized_files_keep_the_projection_in_float(tflite_dir, long_mel):
    """The float16 and dynamic int8 files carry the mel-consistency projection: their audio stays within 1 % and
    5 % (relative L2) of the float32 file's, same mel and noise. Dynamic-range quantization used to make the
    projection's DFT and filterbank matrices int8: the pretrained model's dynamic int8 audio was 4.1 away."""
    files = tflite_files(tflite_dir)
    mel = long_mel[:260]
    reference = LiteRTVocoder(files["float32"]).vocode(mel, seed=3)
    for variant, bound in (("float16", 0.01), ("dynamic_int8", 0.05)):
        audio = LiteRTVocoder(files[variant]).vocode(mel, seed=3)
        assert np.linalg.norm(audio - reference) / np.linalg.norm(reference) <= bound, variant


def test_quantized_variants_run_any_length(tflite_dir, long_mel):
    for name, path in tflite_files(tflite_dir).items():
        vocoder = LiteRTVocoder(path)
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
    (tmp_path / "wavegrad.json").write_text(json.dumps({**meta, "signature_frames": [32]}))
    with pytest.raises(MetadataError, match=r"lists signature sizes \[32\], but float16.tflite has signatures"):
        LiteRTVocoder(model)
    (tmp_path / "wavegrad.json").write_text("{not json")
    with pytest.raises(MetadataError, match=r"wavegrad.json: not JSON"):
        LiteRTVocoder(model)
    old_name = {k: v for k, v in meta.items() if k != "signature_frames"}  # written before the rename
    (tmp_path / "wavegrad.json").write_text(json.dumps({**old_name, "chunk_frames": meta["signature_frames"]}))
    assert LiteRTVocoder(model).sizes == tuple(meta["signature_frames"])


def test_infer_cli_runs_a_tflite_file_without_tensorflow(tflite_dir, tmp_path):
    """The vocoding CLI imports, analyses a wav and vocodes it with TensorFlow made unimportable."""
    script = (f"import sys; sys.modules['tensorflow'] = None; sys.argv = ['infer', '--model', "
              f"'{tflite_dir / 'float16.tflite'}', '--input', '{SPEECH[2]}', '--output', '{tmp_path / 'o.wav'}'];"
              "from wavegrad_tf import cli, infer; infer.define_flags(); cli.run(infer.main)")
    out = run_module(["-c", script])
    assert "wrote" in out.stdout
    assert sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[2]).frames


def test_evaluator_scores_a_tflite_file_on_an_audio_folder(tflite_dir, tmp_path):
    from wavegrad_tf import evaluate_lib

    model = tflite_dir / "float16.tflite"
    with pytest.raises(ValueError, match="pass --audio_dir"):
        evaluate_lib.evaluate(model, tmp_path / "no_clips")
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in SPEECH[:2]:
        (clips / path.name).write_bytes(path.read_bytes())
    results = evaluate_lib.evaluate(model, tmp_path / "eval", audio_dir=clips, griffin_lim_iterations=4,
                                metric_names=["log_mel_l1", "stoi"])
    assert results["vocoder"].startswith("WaveGrad float16 TFLite") and len(results["files"]) == 2
    assert all(0 < r["systems"]["wavegrad"]["stoi"] <= 1 for r in results["files"])


# With the tiny run's own (priorgrad, mel), tested throughout, every prior and every projection is exported once.
@pytest.mark.parametrize("prior, consistency", [("specgrad", "gla"), ("standard", "gla_once")])
def test_each_prior_and_consistency_exports_equal_to_the_keras_sampler(tiny_run, tmp_path, long_mel, prior,
                                                                       consistency):
    """The tiny run's weights under another prior and projection (1 iteration, 1 step): the SavedModel's and the
    float32 TFLite file's audio (one 72-frame signature) equal the Keras vocoder's, same noise, same chunks,
    within 1e-4 relative L2, and the TFLite graph still runs wholly in XNNPACK."""
    import yaml

    from wavegrad_tf.export.saved_model_lib import export_saved_model
    from wavegrad_tf.export.tflite_lib import export_tflite

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("audio_cache"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["diffusion"].update(prior=prior, consistency=consistency, consistency_iterations=1, consistency_steps=1)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    keras_vocoder = load_vocoder(run)
    assert keras_vocoder.metadata.consistency.kind == consistency
    saved = load_vocoder(export_saved_model(run, tmp_path / "serving"))
    size = SIZES[0]
    lite = load_vocoder(export_tflite(run, tmp_path / "tflite", variants=["float32"], signature_frames=(size,))["float32"])
    assert lite.compiled.is_fully_accelerated() and lite.metadata.consistency == keras_vocoder.metadata.consistency
    mel = long_mel[:2 * size - lite.overlap_frames]  # two chunks that fill the signature exactly
    for vocoder in (keras_vocoder, saved):
        vocoder.first_chunk_frames, vocoder.chunk_frames = size, size
    expected = keras_vocoder.vocode(mel, seed=3)
    for other in (saved, lite):
        audio = other.vocode(mel, seed=3)
        assert np.linalg.norm(audio - expected) / np.linalg.norm(expected) <= 1e-4, other.name


def test_a_vocoder_shared_by_threads_gives_each_its_own_audio(tflite_dir, long_mel):
    """Four threads vocode four different mels on one LiteRT vocoder at once: each result equals the one vocoded
    alone (the I/O buffers are the signature's, shared: before the lock, relative L2 up to 1.14, no error)."""
    from concurrent.futures import ThreadPoolExecutor

    vocoder = LiteRTVocoder(tflite_dir / "float32.tflite")
    mels = [long_mel[k * 40:k * 40 + 150] for k in range(4)]
    alone = [vocoder.vocode(m, seed=k) for k, m in enumerate(mels)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda k: vocoder.vocode(mels[k], seed=k), range(4)))
    for a, b in zip(alone, together):
        assert np.linalg.norm(a - b) <= 1e-6 * np.linalg.norm(a)
