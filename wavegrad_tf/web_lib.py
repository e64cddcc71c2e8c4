"""The browser page (`web/`) served on localhost with a model to vocode: `python -m wavegrad_tf.web` is its command
line. The page runs the model itself, with LiteRT.js; this server only hands out files:

    /                    web/ (index.html, the ES modules, node_modules/@litertjs/core after `npm ci`)
    /model/<file>        the served .tflite file and the wavegrad.json beside it

with the cross-origin isolation headers that let LiteRT.js use its threaded WebAssembly build.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

from export.tflite_lib import VARIANTS
from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime.metadata import FILENAME, Metadata

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def check_web_dir(web_dir: Path = WEB_DIR) -> Path:
    if not (web_dir / "index.html").is_file():
        raise UserError(f"{web_dir}: no index.html; the page ships in the repository's web/ folder (run from a clone)")
    if not (web_dir / "node_modules" / "@litertjs" / "core" / "dist" / "index.js").is_file():
        raise UserError(f"{web_dir}/node_modules: LiteRT.js is not installed; run `npm ci` in {web_dir}")
    return web_dir


def model_file(source, variant: str = "float16", output: Optional[str | os.PathLike] = None) -> Path:
    """The .tflite file to serve for `source` (a `ModelSource` of a .tflite file or of a run): the file itself, or
    the run's `variant` export in `output` (default exported/web/<name>), written there unless an export with the
    same settings already is."""
    if variant not in VARIANTS:
        raise UserError(f"--variant {variant}: expected one of {list(VARIANTS)}")
    if source.kind == "tflite":
        path = Path(source.spec)
        if not path.is_file() or not (path.parent / FILENAME).is_file():
            raise UserError(f"--model {source.spec}: expected a .tflite file with its {FILENAME} beside it")
        return path
    from export import tflite_lib

    run = source.run
    output = Path(output or Path("exported") / "web" / Path(run.name).name)
    target = output / f"{variant}.tflite"
    if not (target.is_file() and (output / FILENAME).is_file() and
            Metadata.load(output / FILENAME) == tflite_lib.planned_metadata(run)):
        print(f"exporting {run.name} as {target} (once; later runs reuse it)", flush=True)
        tflite_lib.export_tflite(run, output, variants=[variant])
    return target


class _Handler(SimpleHTTPRequestHandler):
    """Static files of web/, and /model/<name> for the two files of the served model, with isolation headers."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json", ".tflite": "application/octet-stream"}

    def __init__(self, *args, served: Path, **kwargs):
        self.served = served
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        name = path.split("?", 1)[0].split("#", 1)[0]
        if name.startswith("/model/"):
            file = name[len("/model/"):]
            # Only the served model's two files: nothing else of its folder (or above it) is reachable.
            allowed = {self.served.name: self.served, FILENAME: self.served.parent / FILENAME}
            return str(allowed.get(file, self.served.parent / ".not-served"))
        return super().translate_path(path)

    def end_headers(self):
        # Cross-origin isolation: SharedArrayBuffer, so LiteRT.js may run its threaded WebAssembly build.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # a quiet server: the page reports what happens
        pass


def serve(model: Path, host: str = "127.0.0.1", port: int = 8000, web_dir: Path = WEB_DIR) -> ThreadingHTTPServer:
    """Starts serving in a background thread; returns the server (`server.url` is the page's address)."""
    check_web_dir(web_dir)
    handler = functools.partial(_Handler, directory=str(web_dir), served=Path(model).resolve())
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    server.url = f"http://{bound_host}:{bound_port}/?model=model/{Path(model).name}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def describe(model: Path) -> str:
    metadata = json.loads((Path(model).parent / FILENAME).read_text())
    return (f"{Path(model).name} ({Path(model).stat().st_size / 1e6:.1f} MB, {len(metadata['betas'])} iterations, "
            f"{metadata['audio']['sample_rate']} Hz)")
