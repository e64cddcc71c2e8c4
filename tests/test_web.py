"""The browser page (web/): its JavaScript twins of the mel and the noise, and the page itself in a real headless
Chromium (Debian's /usr/bin/chromium driven by Playwright, no browser download), vocoding with LiteRT.js."""

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, SPEECH, scratch_web, tflite_files
from wavegrad_tf import mel as mel_lib, web_lib
from wavegrad_tf.audio import load_audio
from wavegrad_tf.config import load_config
from wavegrad_tf.runtime import PositionalNoise
from wavegrad_tf.vocoders.litert import LiteRTVocoder

WEB = ROOT / "web"
CHROMIUM = Path(os.environ.get("WAVEGRAD_CHROMIUM", "/usr/bin/chromium"))
# Flags for a headless browser on a closed network, as root (no sandbox), with audio allowed without a gesture.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def node(script: str, *args) -> str:
    """Runs an ES module snippet with Node in web/ and returns its standard output."""
    out = subprocess.run(["node", "--input-type=module", "-e", script, *map(str, args)], capture_output=True,
                         text=True, cwd=WEB, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_javascript_mel_equals_the_numpy_twin_on_real_speech(tmp_path):
    """web/mel.js on 3 s of recorded speech: every log-mel value above the floor within 1e-3 of mel.py's NumPy
    twin, for the pretrained model's features and for Base's (another rate, FFT size and band count)."""
    for preset in ("demo", "base"):
        audio_cfg = load_config(preset).audio
        speech = load_audio(SPEECH[1], audio_cfg.sample_rate)[:3 * audio_cfg.sample_rate]
        speech.astype("<f4").tofile(tmp_path / "speech.f32")
        (tmp_path / "audio.json").write_text(json.dumps(audio_cfg.__dict__))
        got = np.array(json.loads(node(
            "import {readFileSync} from 'fs'; import {logMelSpectrogram} from './mel.js';"
            "const [, raw, cfg] = process.argv;"
            "const samples = new Float32Array(readFileSync(raw).buffer.slice(0));"
            "const {data} = logMelSpectrogram(samples, JSON.parse(readFileSync(cfg, 'utf8')));"
            "console.log(JSON.stringify(Array.from(data)));", tmp_path / "speech.f32", tmp_path / "audio.json")))
        expected = mel_lib.log_mel_spectrogram(speech, audio_cfg, use_tf=False)
        got = got.reshape(expected.shape)
        above = expected > mel_lib.silence(audio_cfg) + 0.01
        assert above.mean() > 0.5, preset
        assert np.abs(got - expected)[above].max() < 1e-3, preset


def test_javascript_noise_is_the_python_noise():
    """web/noise.js draws, for a seed, exactly the float32 values PositionalNoise draws, at any offset."""
    got = np.array(json.loads(node(
        "import {PositionalNoise} from './noise.js';"
        "const noise = new PositionalNoise(Number(process.argv[1]));"
        "console.log(JSON.stringify(Array.from(noise.perStep(3, 1237, 5001))));", 2**40 + 7)), np.float32)
    expected = PositionalNoise(2**40 + 7).per_step(3, 1237, 5001).ravel()
    np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        # .ci/run installs Debian's chromium and sets WAVEGRAD_REQUIRE_BROWSER: there its absence is a failure.
        message = f"{CHROMIUM}: no Chromium (apt-get install chromium, or set WAVEGRAD_CHROMIUM)"
        if os.environ.get("WAVEGRAD_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    web_lib.check_web_dir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, model: Path):
    server = web_lib.serve(model, port=0)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_function("window.wavegrad && window.wavegrad.ready", timeout=120_000)
    assert not errors, errors
    return server, page


def browser_vocode(page, mel: np.ndarray, seed: int) -> np.ndarray:
    return np.array(page.evaluate(
        "async ([data, frames, seed]) => Array.from((await window.wavegrad.vocode(window.wavegrad.vocoder, "
        "Float32Array.from(data), frames, seed, {play: false})).audio)",
        [mel.ravel().tolist(), len(mel), seed]), np.float32)


def test_the_browser_gives_the_python_runners_audio(browser, tiny_tflite, tiny_cfg, speech):
    """The tiny export (mel-consistency projection in the graph) vocoded in Chromium by LiteRT.js and in Python by
    ai-edge-litert, same mel, same seed, three chunks: float32 within 1e-4 relative L2; float16 and dynamic int8
    within what the Python runner itself shows between those files and float32."""
    files = tflite_files(tiny_tflite)
    mel = mel_lib.log_mel_spectrogram(speech, tiny_cfg.audio, use_tf=False)[:260]
    reference = LiteRTVocoder(files["float32"]).vocode(mel, seed=3)
    for variant, tolerance in (("float32", 1e-4), ("float16", None), ("dynamic_int8", None)):
        python = LiteRTVocoder(files[variant]).vocode(mel, seed=3)
        server, page = open_page(browser, files[variant])
        try:
            got = browser_vocode(page, mel, 3)
        finally:
            page.close()
            server.shutdown()
        assert got.shape == python.shape and np.all(np.isfinite(got)), variant
        distance = np.linalg.norm(got - python) / np.linalg.norm(python)
        allowed = tolerance or max(1e-4, np.linalg.norm(python - reference) / np.linalg.norm(reference))
        assert distance <= allowed, (variant, distance, allowed)


def test_a_person_vocodes_a_recording_with_the_pretrained_model(browser, tmp_path):
    """As a person would: open the page, choose a real clip of a speaker the pretrained model never heard, press
    Vocode, download the wav. It has the clip's duration, is finite, and its log-mel is closer to the clip's than
    the pretrained test's threshold. The network alone is exported (--consistency none): the projection would
    bring any output's mel to the clip's, and the threshold tells the trained network from others only without it."""
    from wavegrad_tf.export.tflite_lib import export_tflite
    from test_pretrained import NAME, THRESHOLD

    model = export_tflite(NAME, tmp_path / "export", variants=["float16"], signature_frames=(80,),
                          consistency={"kind": "none"})["float16"]
    clip = SPEECH[0]
    server, page = open_page(browser, model)
    try:
        page.set_input_files("#audio", str(clip))
        page.click("#vocode")
        page.wait_for_selector("#download:not([hidden])", timeout=300_000)
        rtf = float(page.inner_text("#rtf"))
        with page.expect_download() as download:
            page.click("#download")
        download.value.save_as(tmp_path / "vocoded.wav")
    finally:
        page.close()
        server.shutdown()
    vocoded, rate = sf.read(tmp_path / "vocoded.wav", dtype="float32")
    original = load_audio(clip, 16000)
    assert rate == 16000 and len(vocoded) == len(original) and np.all(np.isfinite(vocoded))
    assert 0 < rtf < 50
    audio_cfg = load_config("demo").audio
    assert mel_lib.log_mel_l1(vocoded, original, audio_cfg, use_tf=False) < THRESHOLD


def test_the_command_serves_the_page_and_the_model(tiny_tflite, tmp_path):
    """python -m wavegrad_tf.web --model <a .tflite> prints the page's address; the page, LiteRT.js and the
    model's two files are served with cross-origin isolation, and nothing else of the model's folder."""
    model = tflite_files(tiny_tflite)["float16"]
    proc = subprocess.Popen([os.sys.executable, "-m", "wavegrad_tf.web", "--model", str(model), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = lines[1].split()[1]
        assert lines[1].startswith("open http://127.0.0.1:") and url.endswith("?model=model/float16.tflite"), lines
        base = url.split("?")[0]
        with urllib.request.urlopen(base) as page:
            assert b'id="vocode"' in page.read()
            assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with urllib.request.urlopen(base + "model/wavegrad.json") as meta:
            assert json.load(meta)["signature_frames"]
        with urllib.request.urlopen(base + "model/float16.tflite") as tflite:
            assert tflite.read() == model.read_bytes()
        with urllib.request.urlopen(base + "node_modules/@litertjs/core/dist/index.js") as lib:
            assert lib.headers["Content-Type"] == "text/javascript"
        for hidden in ("model/float32.tflite", "model/../float32.tflite"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + hidden)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_run_is_exported_once_and_then_reused(tiny_run, tmp_path, monkeypatch):
    """model_file on a run: the first call exports the variant, the second finds an export of the same settings
    and reuses it, a changed schedule in the run's config exports again."""
    import wavegrad_tf.export.tflite_lib
    from wavegrad_tf.vocoders import resolve

    calls = []

    def fake_export(model, output, variants):
        calls.append(variants)
        Path(output).mkdir(parents=True, exist_ok=True)
        wavegrad_tf.export.tflite_lib.planned_metadata(model).save(output)
        (Path(output) / f"{variants[0]}.tflite").write_bytes(b"stub")

    monkeypatch.setattr(wavegrad_tf.export.tflite_lib, "export_tflite", fake_export)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("audio_cache"))
    first = web_lib.model_file(resolve(str(run)), "float16", tmp_path / "web")
    second = web_lib.model_file(resolve(str(run)), "float16", tmp_path / "web")
    assert first == second == tmp_path / "web" / "float16.tflite" and calls == [["float16"]]
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["diffusion"]["inference_schedule"] = [0.5]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert web_lib.model_file(resolve(str(run)), "float16", tmp_path / "web") == first and len(calls) == 2


@pytest.fixture
def scratch(tmp_path):
    return scratch_web(tmp_path)


def _get(server, path: str, host: str = None):
    import http.client

    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    connection.request("GET", path, headers={"Host": host} if host else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_the_server_answers_only_its_hosts_and_only_a_fixed_set_of_files(scratch):
    """The third audit: any Host header was answered (a page that rebinds its DNS name to 127.0.0.1 could read what
    is served); /node_modules/ was listed; a symlink out of web/ was followed. Now: loopback names and --host only,
    404 for any folder and anything but the page's files, LiteRT.js's built files and the model's two."""
    web, model = scratch
    server = web_lib.serve(model, port=0, web_dir=web)
    try:
        port = server.server_address[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert _get(server, "/", host)[0] == 200, host
        for host in (f"rebound.example:{port}", "evil", f"127.0.0.2:{port}"):
            assert _get(server, "/", host)[0] == 403, host
        assert _get(server, "/app.js")[1] == (WEB / "app.js").read_bytes()
        assert _get(server, "/node_modules/@litertjs/core/dist/index.js")[0] == 200
        assert _get(server, "/model/m.tflite")[1] == b"model"
        for hidden in ("/node_modules/", "/node_modules/@litertjs/", "/secret.js", "/model/other.tflite",
                       "/model/", "/../secret.txt", "/%2e%2e/secret.txt", "/index.html/.."):
            assert _get(server, hidden)[0] == 404, hidden
    finally:
        server.shutdown()
    allowed = web_lib.serve(model, host="127.0.0.1", port=0, web_dir=web, allowed_hosts=["vocoder.lan"])
    try:
        assert _get(allowed, "/", "vocoder.lan:8000")[0] == 200 and _get(allowed, "/", "other.lan")[0] == 403
    finally:
        allowed.shutdown()


def test_idle_connections_are_bounded_in_number_and_time(scratch, monkeypatch):
    """300 idle connections held 303 threads, for ever. Now at most MAX_CONNECTIONS are served at once (one more is
    closed unanswered) and each idle one is closed after IDLE_SECONDS."""
    import socket
    import threading
    import time

    monkeypatch.setattr(web_lib._Handler, "timeout", 1)
    web, model = scratch
    before = threading.active_count()
    server = web_lib.serve(model, port=0, web_dir=web)
    try:
        idle = [socket.create_connection(server.server_address[:2]) for _ in range(web_lib.MAX_CONNECTIONS + 20)]
        time.sleep(0.5)
        assert threading.active_count() - before <= web_lib.MAX_CONNECTIONS + 1  # + the server's own thread
        for sock in idle:
            sock.settimeout(5)
        time.sleep(1.5)
        assert all(sock.recv(1) == b"" for sock in idle)  # every one closed by the server
        for sock in idle:
            sock.close()
        assert _get(server, "/")[0] == 200  # and it serves again
    finally:
        server.shutdown()
