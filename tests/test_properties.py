"""The input boundaries held by generated inputs (Hypothesis): mels, config overrides, schedules, wavegrad.json,
TF Serving replies and web requests. The contract at each, as docs/reliability.md records it: a correct result, or
a UserError naming the input (which every command prints as one line, exit status 2), and nothing written.

Profiles (conftest.py): `ci`, the default, keeps the whole file to about a minute; HYPOTHESIS_PROFILE=thorough
tries 20 times as many inputs."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from canned_server import CannedServer, send
from conftest import TINY, scratch_web
from wavegrad_tf.errors import UserError

N_MELS = 64
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children,
                                                                                        max_size=4), max_leaves=12)


def one_line(error: Exception) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


# -- mels -----------------------------------------------------------------------------------------------------------
def mels():
    plausible = st.floats(-12.0, 4.0, width=32)
    shapes = st.tuples(st.integers(0, 90), st.sampled_from([N_MELS, N_MELS, 80, 1, 0]))
    return st.one_of(
        hnp.arrays(np.float32, shapes, elements=plausible),  # mostly right: real vocoding
        hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), shapes, elements=FLOATS | plausible),
        hnp.arrays(st.sampled_from([np.int32, np.bool_, np.uint8]), st.tuples(st.integers(1, 20), st.just(N_MELS))),
        hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=N_MELS + 1), elements=plausible))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mel=mels())
def test_a_mel_vocodes_or_is_refused_by_name(tiny_vocoder, tmp_path, mel):
    """Any shape (0 to 90 frames, wrong bins, 0 to 3 axes), dtype, NaN, inf or extreme value: the audio of its
    frames, finite and under full scale, or an InputError naming the mel and what was expected; no file written."""
    from wavegrad_tf.infer_lib import vocode_file

    np.save(tmp_path / "m.npy", mel)
    output = tmp_path / "out.wav"
    try:
        result = vocode_file(tiny_vocoder_source(tiny_vocoder), str(tmp_path / "m.npy"), str(output), seed=0,
                             progress=None)
    except UserError as e:
        assert str(tmp_path / "m.npy") in one_line(e) and not output.exists()
        assert any(word in str(e) for word in ("expected", "contains NaN")), str(e)
        return
    import soundfile as sf

    audio = sf.read(output, dtype="float32")[0]
    assert mel.ndim == 2 and mel.shape[1] == N_MELS and len(audio) == mel.shape[0] * 200 == round(result["seconds"] * 16000)
    assert np.isfinite(audio).all() and np.abs(audio).max(initial=0) < 1.0
    output.unlink()


def tiny_vocoder_source(vocoder):
    """A ModelSource that hands out the session's tiny vocoder (loading it per example would take seconds)."""
    from wavegrad_tf.vocoders.source import ModelSource

    class Loaded(ModelSource):
        kind = "run"
        description = "the tiny run, loaded"
        options = ("schedule", "iterations", "precision", "consistency", "threads", "timeout")
        audio_cfg = vocoder.metadata.audio

        @classmethod
        def claim(cls, spec, flag):
            return None

        def load(self, **options):
            return vocoder

    return Loaded("tiny")


# -- config overrides -----------------------------------------------------------------------------------------------
def fields():
    from wavegrad_tf.config import Config, _flatten

    return sorted(_flatten(Config().to_dict()))


VALUES = st.one_of(st.integers(-3, 10**9).map(str), st.floats(allow_nan=True).map(repr), st.sampled_from(
    [".nan", ".inf", "-.inf", "true", "null", "[]", "[1, 2", "{a: 1}", "'text'", "1e400", "[[0.1, 0.5]]", "&a [*a]"]),
    st.text(max_size=8))


@settings(deadline=None)
@given(key=st.sampled_from(fields()) | st.text(min_size=1, max_size=12), value=VALUES)
def test_an_override_gives_a_valid_config_or_an_error_naming_it(key, value):
    """--override KEY=VALUE for every field and any YAML: a config whose every number is finite and that validates,
    or a ConfigError naming the override."""
    from wavegrad_tf.config import echo, load_config

    override = f"{key}={value}"
    try:
        cfg = load_config(TINY, [override])
    except UserError as e:
        assert one_line(e).startswith((f"--override {echo(override)}", str(TINY))), str(e)
        return
    cfg.validate()
    flat = json.dumps(cfg.to_dict())
    assert "NaN" not in flat and "Infinity" not in flat


# -- schedules ------------------------------------------------------------------------------------------------------
@settings(deadline=None)
@given(betas=st.lists(FLOATS | st.floats(1e-12, 0.99), max_size=30) | JSON)
def test_a_schedule_is_usable_or_refused(betas):
    """Any list of numbers (NaN, inf, 0, negative, >= 1, falling, tiny) or any JSON value: betas a sampler can run
    (finite, in (0, 1), not falling, at least 1e-10, and coefficients that are finite), or a ScheduleError."""
    from wavegrad_tf import schedules

    try:
        got = schedules.get_schedule(betas)
    except (UserError, TypeError, ValueError) as e:
        assert isinstance(e, UserError), f"{type(e).__name__}: {e}"
        one_line(e)
        return
    assert got.ndim == 1 and len(got) and np.all(np.isfinite(got)) and np.all((got > 0) & (got < 1))
    assert np.all(np.diff(got) >= 0) and got.min() >= schedules.MIN_BETA
    assert all(np.all(np.isfinite(v)) for v in schedules.sampler_coefficients(got).values())


# -- wavegrad.json --------------------------------------------------------------------------------------------------
GOOD_METADATA = {"audio": {"sample_rate": 16000, "n_mels": 64, "hop_length": 200, "win_length": 800, "n_fft": 1024,
                           "fmin": 20.0, "fmax": 8000.0}, "betas": [0.001, 0.5], "max_frames": 300,
                 "signature_frames": [72, 120], "consistency": {"kind": "mel", "iterations": 2, "steps": 0}}


@st.composite
def metadata_texts(draw):
    data = json.loads(json.dumps(GOOD_METADATA))
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from([None, "audio", "consistency"]))
        target = data if section is None or not isinstance(data.get(section), dict) else data[section]
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSON)
    return draw(st.sampled_from([json.dumps(data), json.dumps(data)[:draw(st.integers(0, 50))], json.dumps(draw(JSON))]))


@settings(deadline=None)
@given(text=metadata_texts())
def test_a_wavegrad_json_loads_whole_or_is_refused_by_name(text):
    """Fields removed, replaced by any JSON value, cut short, or another document: a Metadata whose every field has
    its type and range, or a MetadataError naming the file."""
    from wavegrad_tf.config import Consistency
    from wavegrad_tf.runtime import Metadata

    try:
        meta = Metadata.from_json(text, "exported/wavegrad.json")
    except UserError as e:
        assert one_line(e).startswith("exported/wavegrad.json: "), str(e)
        return
    meta.audio.validate()
    assert meta.betas and all(0 < b < 1 for b in meta.betas)
    assert meta.max_frames is None or (isinstance(meta.max_frames, int) and meta.max_frames >= 1)
    assert all(isinstance(n, int) and n >= 1 for n in meta.signature_frames)
    assert meta.consistency.kind in Consistency.KINDS
    assert 0 <= meta.consistency.iterations <= Consistency.MAX_ITERATIONS


# -- TF Serving replies ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reply_server():
    """A REST endpoint whose metadata is GOOD_METADATA's and whose every predict reply is its `body`."""
    server = CannedServer(json.dumps(GOOD_METADATA), lambda handler: send(handler, server.body))
    server.body = b""
    yield server
    server.close()


SAMPLES = 12 * 200


@st.composite
def replies(draw):
    audio = draw(st.one_of(
        hnp.arrays(np.float64, st.sampled_from([(1, SAMPLES), (1, SAMPLES - 1), (2, SAMPLES), (SAMPLES,)]),
                   elements=st.floats(-10, 10) | st.floats(allow_nan=True, allow_infinity=True)).map(np.ndarray.tolist),
        st.lists(st.lists(st.booleans() | st.none() | st.text(max_size=2), min_size=1, max_size=3), max_size=2),
        JSON))
    kind = draw(st.sampled_from(["outputs", "audio", "raw"]))
    body = ({"outputs": {"audio": audio}} if kind == "outputs" else {"outputs": audio} if kind == "audio" else audio)
    text = json.dumps(body, allow_nan=True).encode()
    return draw(st.sampled_from([text, text[:draw(st.integers(0, 40))]]))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=replies())
def test_a_serving_reply_is_the_requested_audio_or_refused_naming_the_server(reply_server, body):
    """Any JSON (or its first bytes) as the reply: [1, 2400] finite samples within the sampler's bound, exactly as
    sent, or a ServingError that starts with the server's URL."""
    from wavegrad_tf.runtime import ITERATE_BOUND
    from wavegrad_tf.vocoders.tf_serving import ServingError, ServingVocoder

    reply_server.body = body
    vocoder = ServingVocoder(reply_server.url, timeout=10)
    try:
        audio = vocoder.vocode(np.full((12, N_MELS), -5.0, np.float32), seed=0)
    except ServingError as e:
        assert one_line(e).startswith(reply_server.url), str(e)
        return
    sent = np.asarray(json.loads(body)["outputs"]["audio"], np.float64)
    assert audio.shape == (SAMPLES,) and np.isfinite(audio).all() and np.abs(audio).max() <= ITERATE_BOUND
    np.testing.assert_allclose(audio, sent.astype(np.float32)[0])


# -- web requests ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    from wavegrad_tf import web_lib

    web, model = scratch_web(tmp_path_factory.mktemp("web"))
    server = web_lib.serve(model, port=0, web_dir=web)
    page = (web / "index.html").read_bytes()
    served = {"/": page, "/index.html": page, "/app.js": (web / "app.js").read_bytes(),
              "/node_modules/@litertjs/core/dist/index.js": b"export {};\n", "/model/m.tflite": b"model",
              "/model/wavegrad.json": b"{}"}
    yield server, served
    server.shutdown()


PATH_PARTS = st.sampled_from(["", ".", "..", "%2e%2e", "model", "m.tflite", "other.tflite", "wavegrad.json", "web",
                              "index.html", "app.js", "secret.js", "secret.txt", "node_modules", "@litertjs", "core",
                              "dist", "index.js", "%00", "~", "a?b", "#x"])


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(PATH_PARTS, max_size=6), host=st.sampled_from(["127.0.0.1", "localhost", "[::1]", "evil.example",
                                                                     "127.0.0.1.evil", "", "localhost:1"]),
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT"]))
def test_the_web_server_serves_its_files_and_nothing_else(web_server, parts, host, method):
    """Any path of traversals, encodings, the model's neighbours and a symlink out, any Host, any method: 200 with
    exactly one of its files (to an allowed host, GET or HEAD), else 403, 404 or 501; never anything else."""
    import http.client

    server, served = web_server
    path = "/" + "/".join(parts)
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.putrequest(method, path, skip_host=True)
    if host:
        connection.putheader("Host", host)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status == 200:
        name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        assert name in ("127.0.0.1", "localhost", "::1") and method in ("GET", "HEAD")
        assert body == (b"" if method == "HEAD" else served[path.split("?")[0].split("#")[0]])
    else:
        assert response.status in (403, 404, 501), (response.status, body[:100])
        assert b"not for the page" not in body and body != b"other"  # neither the secret nor the model's neighbour
