import subprocess

import numpy as np
import pytest
import tensorflow as tf

from export.saved_model import export_saved_model
from wavegrad_tf import diffusion, infer
from wavegrad_tf.mel import log_mel_spectrogram
from wavegrad_tf.vocoders import load_vocoder


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    path = export_saved_model(tiny_run, tmp_path_factory.mktemp("serving"), "wavegrad", 1, max_frames=300)
    return path, tf.saved_model.load(str(path))


def test_layout_is_what_tf_serving_loads(exported):
    path, _ = exported
    assert path.name == "1" and path.parent.name == "wavegrad"
    assert (path / "saved_model.pb").exists() and (path / "variables" / "variables.index").exists()
    shown = subprocess.run(["saved_model_cli", "show", "--dir", str(path), "--all"], capture_output=True,
                           text=True, check=True).stdout
    for name in ("serving_default", "vocode_with_noise", "mel_from_audio"):
        assert f"signature_def['{name}']" in shown
    assert shown.count("Method name is: tensorflow/serving/predict") == 3


def test_saved_model_cli_run_vocodes(exported, tmp_path):
    path, _ = exported
    np.save(tmp_path / "mel.npy", np.full((1, 12, 64), -4.0, np.float32))
    np.save(tmp_path / "lengths.npy", np.array([12], np.int32))
    subprocess.run(["saved_model_cli", "run", "--dir", str(path), "--tag_set", "serve", "--signature_def",
                    "serving_default", "--inputs", f"mel={tmp_path}/mel.npy;lengths={tmp_path}/lengths.npy",
                    "--outdir", str(tmp_path)], check=True, capture_output=True)
    audio = np.load(tmp_path / "audio.npy")
    assert audio.shape == (1, 12 * 200) and np.isfinite(audio).all() and audio.std() > 0


def test_saved_model_matches_keras_sampler_with_the_same_noise(exported, tiny_model_and_mel):
    _, loaded = exported
    cfg, model, mel = tiny_model_and_mel
    betas = infer.schedule_for(cfg)
    noise = diffusion.PositionalNoise(seed=9)
    length = mel.shape[0] * cfg.audio.hop_length
    keras_audio = diffusion.sample(lambda y, m, l: model([y, m, l]), mel[None], cfg.audio.hop_length, betas,
                                   noise).numpy()
    stacked = noise.per_step(len(betas), 0, length)
    out = loaded.signatures["vocode_with_noise"](mel=tf.constant(mel[None]), lengths=tf.constant([len(mel)]),
                                                 noise=tf.constant(stacked))
    assert np.max(np.abs(out["audio"].numpy() - keras_audio)) <= 1e-5


def test_vocoder_interface_reads_the_export_and_matches_the_checkpoint(exported, tiny_run, tiny_model_and_mel):
    path, _ = exported
    _, _, mel = tiny_model_and_mel
    from_export = load_vocoder(path.parent)  # the model folder: its highest version
    assert from_export.audio == load_vocoder(tiny_run).audio
    np.testing.assert_allclose(from_export.betas, infer.schedule_for(tiny_model_and_mel[0]))
    keras_audio = load_vocoder(tiny_run).vocode(mel, seed=4)
    assert np.max(np.abs(from_export.vocode(mel, seed=4) - keras_audio)) <= 1e-5


def test_padded_batch_is_trimmed_by_lengths(exported, tiny_model_and_mel):
    _, loaded = exported
    cfg, _, mel = tiny_model_and_mel
    batch = np.stack([mel[:40], mel[:40]])
    batch[1, 25:] = np.log(cfg.audio.log_floor)  # item 1 is 25 frames, padded with silence
    out = loaded.signatures["serving_default"](mel=tf.constant(batch), lengths=tf.constant([40, 25]))
    audio, lengths = out["audio"].numpy(), out["audio_lengths"].numpy()
    assert lengths.tolist() == [8000, 5000] and audio.shape == (2, 8000)
    assert np.all(audio[1, 5000:] == 0) and np.std(audio[1, :5000]) > 0 and np.std(audio[0, 5000:]) > 0


def test_mel_signature_is_the_front_end(exported, speech, tiny_model_and_mel):
    _, loaded = exported
    cfg = tiny_model_and_mel[0]
    got = loaded.signatures["mel_from_audio"](audio=tf.constant(speech[None, :16000]))["mel"].numpy()
    np.testing.assert_allclose(got[0], log_mel_spectrogram(speech[:16000], cfg.audio).numpy(), atol=1e-5)


@pytest.mark.parametrize("mel, lengths, message", [
    (np.zeros((1, 0, 64)), [0], "at least one frame"),
    (np.zeros((1, 301, 64)), [301], "at most 300 frames"),
    (np.full((1, 5, 64), np.nan), [5], "NaN or inf"),
    (np.zeros((1, 5, 64)), [6], "lengths: expected at most the mel frame count"),
    (np.zeros((2, 5, 64)), [5], "one length per batch item"),
])
def test_bad_requests_are_invalid_argument(exported, mel, lengths, message):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](mel=tf.constant(mel, tf.float32), lengths=tf.constant(lengths))


def test_wrong_mel_bins_or_dtype_are_refused_by_the_signature(exported):
    _, loaded = exported
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](mel=tf.zeros((1, 5, 80)), lengths=tf.constant([5]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](mel=tf.zeros((1, 5, 64), tf.float64), lengths=tf.constant([5]))


def test_warmup_requests_replay_against_the_model(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    path, loaded = exported
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) == 2
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        assert request.model_spec.name == "wavegrad" and request.model_spec.signature_name == "serving_default"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
        assert out["audio"].shape == (1, int(inputs["lengths"][0]) * 200)


@pytest.fixture(scope="module")
def server(exported):
    from serving_stub import StubServer

    stub = StubServer(exported[0].parent, "wavegrad")
    yield stub
    stub.close()


def test_rest_status_and_both_request_forms(server, tiny_model_and_mel):
    import json
    import urllib.request

    from export.serving.client import RestTransport

    assert RestTransport(server.rest, "wavegrad").status()["model_version_status"][0]["state"] == "AVAILABLE"
    mel = tiny_model_and_mel[2][:10]
    body = json.dumps({"instances": [{"mel": mel.tolist(), "lengths": 10}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://{server.rest}/v1/models/wavegrad:predict",
                                                       data=body)) as r:
        prediction = json.load(r)["predictions"][0]
    assert len(prediction["audio"]) == 2000 and prediction["audio_lengths"] == 2000


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_client_matches_keras_with_a_seed_and_resynthesises_wavs(server, protocol, tiny_model_and_mel, tmp_path):
    """Chunked (max 40 frames a request) with position-keyed noise: equal to Keras' chunked synthesis."""
    from export.serving.client import GrpcTransport, RestTransport, vocode

    cfg, model, mel = tiny_model_and_mel
    transport = RestTransport(server.rest, "wavegrad") if protocol == "rest" else GrpcTransport(
        server.grpc_address, "wavegrad")
    got = vocode(transport, mel, 64, 200, 6, seed=4, max_frames=40, overlap_frames=8)
    want = infer.vocode(model, cfg, mel, infer.schedule_for(cfg), seed=4, chunk_frames=40, overlap_frames=8)
    assert np.max(np.abs(got - want)) <= 1e-4
    address = server.rest if protocol == "rest" else server.grpc_address
    from conftest import SPEECH, run_module

    out = run_module(["-m", "export.serving.client", "--server", address, "--protocol", protocol, "--input",
                      str(SPEECH[3]), "--output", str(tmp_path / "o.wav"), "--sample_rate", "16000"])
    import soundfile as sf

    assert "wrote" in out.stdout and sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[3]).frames


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_bad_request_comes_back_as_a_clear_error(server, protocol):
    from export.serving.client import GrpcTransport, RestTransport, ServingError

    transport = RestTransport(server.rest, "wavegrad") if protocol == "rest" else GrpcTransport(
        server.grpc_address, "wavegrad")
    with pytest.raises(ServingError, match="at most 300 frames"):
        transport.predict("serving_default", {"mel": np.zeros((1, 301, 64), np.float32),
                                              "lengths": np.array([301], np.int32)})
