import contextlib
import json
import re
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from canned_server import CannedServer
from conftest import SPEECH, run_module
from wavegrad_tf.export.saved_model_lib import export_saved_model
from wavegrad_tf import diffusion, mel as mel_lib, schedules
from wavegrad_tf.config import Consistency
from wavegrad_tf.runtime import Metadata, PositionalNoise
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
    for name in ("serving_default", "vocode_with_noise", "mel_from_audio", "metadata"):
        assert f"signature_def['{name}']" in shown
    assert shown.count("Method name is: tensorflow/serving/predict") == 4


def test_metadata_signature_and_file_describe_the_export(exported, tiny_model_and_mel):
    path, loaded = exported
    cfg = tiny_model_and_mel[0]
    from_signature = Metadata.from_json(loaded.signatures["metadata"](request=tf.constant(0))["json"].numpy().decode())
    assert from_signature == Metadata.load(path / "assets.extra" / "wavegrad.json")
    assert from_signature.audio == cfg.audio and from_signature.max_frames == 300
    np.testing.assert_allclose(from_signature.betas, schedules.schedule_for(cfg))


def test_saved_model_cli_run_vocodes(exported, tmp_path, tiny_model_and_mel):
    path, _ = exported
    cfg = tiny_model_and_mel[0]
    np.save(tmp_path / "mel.npy", np.full((1, 12, cfg.audio.n_mels), -4.0, np.float32))
    np.save(tmp_path / "lengths.npy", np.array([12], np.int32))
    subprocess.run(["saved_model_cli", "run", "--dir", str(path), "--tag_set", "serve", "--signature_def",
                    "serving_default", "--inputs", f"mel={tmp_path}/mel.npy;lengths={tmp_path}/lengths.npy",
                    "--outdir", str(tmp_path)], check=True, capture_output=True)
    audio = np.load(tmp_path / "audio.npy")
    assert audio.shape == (1, 12 * cfg.audio.hop_length) and np.isfinite(audio).all() and audio.std() > 0


def test_saved_model_matches_keras_sampler_with_the_same_noise(exported, tiny_model_and_mel):
    """Under the run's PriorGrad prior: the graph's prior and sampler equal the Keras ones to 1e-5."""
    _, loaded = exported
    cfg, model, mel = tiny_model_and_mel
    assert cfg.diffusion.prior == "priorgrad"
    betas = schedules.schedule_for(cfg)
    noise = PositionalNoise(seed=9)
    keras_audio = diffusion.Sampler(lambda y, m, c: model([y, m, c]), cfg, betas, Consistency.of(cfg))(
        mel[None], noise).numpy()
    stacked = noise.per_step(len(betas), 0, mel.shape[0] * cfg.audio.hop_length)
    out = loaded.signatures["vocode_with_noise"](mel=tf.constant(mel[None]), lengths=tf.constant([len(mel)]),
                                                 noise=tf.constant(stacked))
    assert np.max(np.abs(out["audio"].numpy() - keras_audio)) <= 1e-5


def test_vocoder_interface_reads_the_export_and_matches_the_checkpoint(exported, tiny_run, tiny_model_and_mel):
    path, _ = exported
    _, _, mel = tiny_model_and_mel
    from_export, from_run = load_vocoder(path.parent), load_vocoder(tiny_run)  # the model folder: its highest version
    assert from_export.metadata.audio == from_run.metadata.audio
    assert from_export.metadata.betas == from_run.metadata.betas
    assert np.max(np.abs(from_export.vocode(mel, seed=4) - from_run.vocode(mel, seed=4))) <= 1e-5


def test_padded_batch_is_trimmed_by_lengths(exported, tiny_model_and_mel):
    _, loaded = exported
    cfg, _, mel = tiny_model_and_mel
    hop = cfg.audio.hop_length
    batch = np.stack([mel[:40], mel[:40]])
    batch[1, 25:] = mel_lib.silence(cfg.audio)  # item 1 is 25 frames, padded with silence
    out = loaded.signatures["serving_default"](mel=tf.constant(batch), lengths=tf.constant([40, 25]))
    audio, lengths = out["audio"].numpy(), out["audio_lengths"].numpy()
    assert lengths.tolist() == [40 * hop, 25 * hop] and audio.shape == (2, 40 * hop)
    assert np.all(audio[1, 25 * hop:] == 0) and np.std(audio[1, :25 * hop]) > 0 and np.std(audio[0, 25 * hop:]) > 0


@pytest.mark.parametrize("frames", [1, 2])
def test_a_request_of_one_or_two_frames_is_vocoded(exported, tiny_model_and_mel, frames):
    """A regression the third audit found: serving_default failed (InvalidArgumentError in the mel projection's
    STFT) on 1 or 2 frames, as a run and the pretrained model did."""
    _, loaded = exported
    cfg, _, mel = tiny_model_and_mel
    out = loaded.signatures["serving_default"](mel=tf.constant(mel[None, :frames]), lengths=tf.constant([frames]))
    audio = out["audio"].numpy()
    assert audio.shape == (1, frames * cfg.audio.hop_length) and np.isfinite(audio).all()


def test_mel_signature_is_the_front_end(exported, speech, tiny_model_and_mel):
    _, loaded = exported
    cfg = tiny_model_and_mel[0]
    got = loaded.signatures["mel_from_audio"](audio=tf.constant(speech[None, :16000]))["mel"].numpy()
    np.testing.assert_allclose(got[0], mel_lib.log_mel_spectrogram(speech[:16000], cfg.audio).numpy(), atol=1e-5)


@pytest.mark.parametrize("mel, lengths, message", [
    (np.zeros((1, 0, 64)), [0], "mel: expected at least one frame"),
    (np.zeros((0, 5, 64)), [], "mel: expected at least one item in the batch"),
    (np.zeros((1, 301, 64)), [301], "at most 300 frames"),
    (np.full((1, 5, 64), np.nan), [5], "NaN or inf"),
    (np.full((1, 5, 64), 1e30), [5], "mel: values above"),
    (np.zeros((1, 5, 64)), [6], "lengths: expected at most the mel frame count"),
    (np.zeros((2, 5, 64)), [5], "lengths: expected as many lengths as mel has batch items"),
    (np.zeros((1, 5, 80)), [5], r"mel: expected \[batch, frames, 64\], got shape\] \[1 5 80\]"),
    (np.zeros((5, 64)), [5], r"mel: expected \[batch, frames, 64\], got shape\] \[5 64\]"),
])
def test_bad_requests_are_invalid_argument_with_a_message(exported, mel, lengths, message):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](mel=tf.constant(mel, tf.float32), lengths=tf.constant(lengths, tf.int32))


def test_warmup_requests_replay_against_the_model(exported, tiny_model_and_mel):
    from tensorflow_serving.apis import prediction_log_pb2

    path, loaded = exported
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) == 2
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        assert request.model_spec.name == "wavegrad" and request.model_spec.signature_name == "serving_default"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
        assert out["audio"].shape == (1, int(inputs["lengths"][0]) * tiny_model_and_mel[0].audio.hop_length)


@pytest.fixture(scope="module")
def server(exported):
    from serving_stub import StubServer

    stub = StubServer(exported[0].parent, "wavegrad")
    yield stub
    stub.close()


def urls(server):
    return {"rest": f"http://{server.rest}/v1/models/wavegrad", "grpc": f"grpc://{server.grpc_address}/wavegrad"}


def test_rest_status_and_both_request_forms(server, tiny_model_and_mel):
    import urllib.request

    from wavegrad_tf.vocoders.tf_serving import RestTransport

    assert RestTransport(urls(server)["rest"]).status()["model_version_status"][0]["state"] == "AVAILABLE"
    mel = tiny_model_and_mel[2][:10]
    body = json.dumps({"instances": [{"mel": mel.tolist(), "lengths": 10}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://{server.rest}/v1/models/wavegrad:predict",
                                                       data=body)) as r:
        prediction = json.load(r)["predictions"][0]
    hop = tiny_model_and_mel[0].audio.hop_length
    assert len(prediction["audio"]) == 10 * hop and prediction["audio_lengths"] == 10 * hop


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_serving_vocoder_reads_the_model_and_matches_keras_with_a_seed(server, protocol, tiny_run, tiny_model_and_mel,
                                                                      tmp_path):
    """Features, schedule and frame limit come from the server; chunked (40 frames a request) with
    position-keyed noise it equals Keras' chunked synthesis; the infer CLI resynthesises a wav through it."""
    from wavegrad_tf.vocoders.checkpoint import KerasVocoder

    cfg, _, mel = tiny_model_and_mel
    vocoder = load_vocoder(urls(server)[protocol])
    assert vocoder.metadata.audio == cfg.audio and vocoder.metadata.max_frames == 300
    keras_vocoder = KerasVocoder.from_run(tiny_run)
    for v in (vocoder, keras_vocoder):
        v.chunk_frames, v.overlap_frames = 40, 8
    assert np.max(np.abs(vocoder.vocode(mel, seed=4) - keras_vocoder.vocode(mel, seed=4))) <= 1e-4
    out = run_module(["-m", "wavegrad_tf.infer", "--model", urls(server)[protocol], "--input", str(SPEECH[3]),
                      "--output", str(tmp_path / "o.wav")])
    import soundfile as sf

    assert "wrote" in out.stdout and sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[3]).frames


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_bad_request_comes_back_as_a_clear_error(server, protocol, tiny_model_and_mel):
    from wavegrad_tf.vocoders.tf_serving import ServingError, transport_for

    transport = transport_for(urls(server)[protocol])
    with pytest.raises(ServingError, match="at most 300 frames"):
        transport.predict("serving_default", {"mel": np.zeros((1, 301, 64), np.float32),
                                              "lengths": np.array([301], np.int32)})
    with pytest.raises(ServingError, match='signature name: "nope" not found'):
        transport.predict("nope", {"mel": np.zeros((1, 3, 64), np.float32)})


@pytest.mark.parametrize("body, headers, expected", [
    (b"{not json", {}, "JSON Parse error"),
    (b"", {}, "not an object"),
    (b"[1, 2]", {}, "not an object"),
    (b'{"instances": []}', {}, "'instances' must be a non-empty list"),
    (b'{"signature_name": "nope", "inputs": {"mel": [[[0.0]]]}}', {}, 'signature name: "nope" not found'),
    (b'{"inputs": {"mel": [[[0.0]]]}}', {"Content-Length": None}, "not an object"),
])
def test_stand_in_server_answers_malformed_requests_as_tf_serving_does(server, body, headers, expected):
    """HTTP 400 with an `error` field, never a dropped connection."""
    import http.client

    connection = http.client.HTTPConnection(*server.rest.split(":"))
    connection.putrequest("POST", "/v1/models/wavegrad:predict")
    if "Content-Length" not in headers:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    if "Content-Length" not in headers:
        connection.send(body)
    response = connection.getresponse()
    assert response.status == 400 and expected in json.loads(response.read())["error"]


def test_grpc_unknown_signature_is_failed_precondition(server):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.grpc_address))
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "wavegrad", "nope"
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION and '"nope" not found' in error.value.details()


def test_rest_client_needs_no_tensorflow(server, tmp_path):
    """The infer CLI vocodes a wav through the REST endpoint with TensorFlow made unimportable; the server
    computes nothing for it but the network (the mel is analysed client-side with the NumPy twin)."""
    script = (f"import sys; sys.modules['tensorflow'] = None; sys.argv = ['infer', '--model', "
              f"'{urls(server)['rest']}', '--input', '{SPEECH[2]}', '--output', '{tmp_path / 'o.wav'}', '--seed', '1'];"
              "from wavegrad_tf import cli, infer; infer.define_flags(); cli.run(infer.main)")
    out = run_module(["-c", script])
    import soundfile as sf

    assert "wrote" in out.stdout and sf.info(tmp_path / "o.wav").frames == sf.info(SPEECH[2]).frames


def _audio(values) -> bytes:
    return json.dumps({"outputs": {"audio": [values]}}).encode()


@pytest.mark.parametrize("reply, message", [
    (_audio([0.0] * 100), r"the reply's audio has shape \[1, 100\]; expected \[1, 2400\]"),
    (_audio([0.0] * 4800), r"the reply's audio has shape \[1, 4800\]; expected \[1, 2400\]"),
    (_audio(["a"] * 2400), "the reply's audio is not numbers"),
    (_audio([True] * 2400), r"the reply's audio is not numbers \(bool\)"),
    (_audio([None] * 2400), "the reply's audio is not numbers"),
    (_audio([0.0] * 2399 + [[0.0]]), "the reply's audio is not numbers"),
    (_audio([float("nan")] * 2400), "the reply's audio holds NaN or inf"),
    (_audio([1e30] * 2400), r"the reply's audio reaches 1e\+30, beyond the \+-8 the sampler bounds its output to"),
    (json.dumps({"predictions": []}).encode(), "the reply has no 'outputs'"),
    (b"<html>a proxy's page</html>", "the reply is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "the reply is nested deeper than any TF Serving reply"),
    (302, r"the server redirected \(HTTP 302\) to ftp://elsewhere/x; redirects are not followed"),
], ids=["half", "double", "strings", "booleans", "nulls", "ragged", "nan", "1e30", "no-outputs", "html", "deep",
        "redirect"])
def test_a_serving_reply_that_is_not_the_requested_audio_is_refused(exported, reply, message):
    """Half or double the samples, strings, booleans, NaN, numbers no sampler produces, no outputs, not JSON, JSON
    nested 100,000 deep, a redirect to another host: each a ServingError naming the URL, never audio handed on as if
    it were right."""
    from wavegrad_tf.vocoders.tf_serving import ServingError, ServingVocoder

    path, _ = exported
    server = CannedServer((path / "assets.extra" / "wavegrad.json").read_text(), reply, "ftp://elsewhere/x")
    try:
        vocoder = ServingVocoder(server.url, timeout=10)
        with pytest.raises(ServingError, match=f"^{re.escape(server.url)}(:predict)?: {message}"):
            vocoder.vocode(np.full((12, 64), -5.0, np.float32), seed=0)
    finally:
        server.close()


def _drip(handler):
    """Headers at once, then a byte a second: each read is quick, the reply never ends."""
    import time

    handler.send_response(200)
    handler.send_header("Content-Length", "1000000")
    handler.end_headers()
    for _ in range(60):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(1)


def _endless(handler):
    """A reply without end: 64 KB after 64 KB until the client hangs up."""
    handler.send_response(200)
    handler.end_headers()
    with contextlib.suppress(OSError):
        for _ in range(50_000):  # 3 GB
            handler.wfile.write(b"[" + b"0.0," * 16_383 + b"0]")


def test_a_dripping_or_endless_reply_is_bounded_in_time_and_size(exported):
    """--timeout 3 bounds the whole reply, not each read: a server that drips a byte a second is given up on at 3 s
    (it used to be waited on for a minute). A reply larger than the request can need is cut off after about 1 MB,
    not read whole (3 GB)."""
    import time

    from wavegrad_tf.vocoders.tf_serving import ServingError, ServingVocoder

    path, _ = exported
    metadata = (path / "assets.extra" / "wavegrad.json").read_text()
    server = CannedServer(metadata, _drip)
    try:
        vocoder = ServingVocoder(server.url, timeout=3)
        start = time.monotonic()
        with pytest.raises(ServingError, match="the reply took more than 3 s"):
            vocoder.vocode(np.full((12, 64), -5.0, np.float32), seed=0)
        assert time.monotonic() - start < 4.5
    finally:
        server.close()
    server = CannedServer(metadata, _endless)
    try:
        with pytest.raises(ServingError, match=r"the reply is larger than 1,125,\d{3} bytes"):
            ServingVocoder(server.url, timeout=30).vocode(np.full((12, 64), -5.0, np.float32), seed=0)
    finally:
        server.close()


@pytest.mark.parametrize("change, message", [
    ({"max_frames": [1]}, r"max_frames: expected a whole number >= 1 or null, got \[1\]"),
    ({"max_frames": -4}, "max_frames: expected a whole number >= 1 or null, got -4"),
    ({"max_frames": "many"}, "max_frames: expected a whole number >= 1 or null, got 'many'"),
    ({"betas": [2.0]}, r"betas: every beta must be in \(0, 1\)"),
    ({"consistency": {"kind": "mel", "iterations": 10 ** 8, "steps": 0}},
     "consistency.iterations: expected a whole number from 1 to 1000, got 100000000"),
], ids=["list", "negative", "string", "beta", "iterations"])
def test_a_served_metadata_reply_that_is_not_an_export_s_is_refused(exported, change, message):
    from wavegrad_tf.runtime import MetadataError
    from wavegrad_tf.vocoders.tf_serving import ServingVocoder

    path, _ = exported
    metadata = json.loads((path / "assets.extra" / "wavegrad.json").read_text())
    server = CannedServer(json.dumps({**metadata, **change}), b"")
    try:
        with pytest.raises(MetadataError, match=f"{server.url} \\(metadata\\): {message}"):
            ServingVocoder(server.url, timeout=10)
    finally:
        server.close()
