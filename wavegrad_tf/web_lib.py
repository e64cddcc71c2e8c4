"""The browser page (`web/`) served on localhost with a model to vocode: `python -m wavegrad_tf.web` is its command
line. The page runs the model itself, with LiteRT.js; this server only hands out files:

    /                    web/ (index.html, the ES modules, node_modules/@litertjs/core after `npm ci`)
    /model/<file>        the served .tflite file and the wavegrad.json beside it

with the cross-origin isolation headers that let LiteRT.js use its threaded WebAssembly build.
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

from wavegrad_tf.export.tflite_lib import VARIANTS
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
    the run's `variant` export in `output` (default exported/web/<name>): reused if there, else added beside an
    export of the same settings, or written into a new folder. An export of other settings there is replaced only if
    it holds nothing but this variant (the page's own earlier export); one holding other files is refused, by name."""
    if variant not in VARIANTS:
        raise UserError(f"--variant {variant}: expected one of {list(VARIANTS)}")
    if source.kind == "tflite":
        path = Path(source.spec)
        if not path.is_file() or not (path.parent / FILENAME).is_file():
            raise UserError(f"--model {source.spec}: expected a .tflite file with its {FILENAME} beside it")
        return path
    from wavegrad_tf.export import check_replaceable, tflite_lib

    run = source.run
    output = Path(output or Path("exported") / "web" / Path(os.path.abspath(run.name)).name)
    target = output / f"{variant}.tflite"
    held = check_replaceable(output, tflite_lib.OWNED)
    if held:
        try:
            same = Metadata.load(output / FILENAME) == tflite_lib.planned_metadata(run)
        except UserError:
            same = False
        if not same and set(held) != {target.name, FILENAME}:
            raise UserError(f"--output {output}: holds an export of other settings ({', '.join(held)}), which the page "
                            "does not replace; give another --output, or re-export there with export.tflite")
        if same and target.is_file():
            return target
    print(f"exporting {run.name} as {target} (once; later runs reuse it)", flush=True)
    tflite_lib.export_tflite(run, output, variants=[variant])
    return target


# Loopback names: what a page opened on this machine sends as its Host. A page elsewhere that rebinds its own
# name to 127.0.0.1 sends its own name, and is refused.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
IDLE_SECONDS = 30  # an idle connection is closed after this
MAX_CONNECTIONS = 32  # a browser opens at most 6 per host; more are refused at once


def check_port(port) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"--port {port}: expected a port number from 0 (any free one) to 65535")


def served_files(web_dir: Path, model: Path) -> dict[str, Path]:
    """{URL path: file}: the page's own files (web/*.html, web/*.js), LiteRT.js's built files, and the served model's
    .tflite and wavegrad.json. Nothing else is reachable: no listing, no other file, no symlink out of web/."""
    root = web_dir.resolve()
    files = {f"/{p.name}": p for p in web_dir.iterdir() if p.suffix in (".html", ".js")}
    for part in ("dist", "wasm"):
        for package in (web_dir / "node_modules" / "@litertjs").glob(f"*/{part}"):
            files.update({"/" + p.relative_to(web_dir).as_posix(): p for p in package.rglob("*") if p.is_file()})
    files = {url: p for url, p in files.items() if p.is_file() and p.resolve().is_relative_to(root)}
    files["/"] = web_dir / "index.html"
    model = Path(model)
    files.update({f"/model/{model.name}": model, f"/model/{FILENAME}": model.parent / FILENAME})
    return files


class _Handler(SimpleHTTPRequestHandler):
    """The files of `served_files`, with cross-origin isolation headers, to requests naming an allowed host."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json", ".tflite": "application/octet-stream"}
    timeout = IDLE_SECONDS

    def __init__(self, *args, files: dict, hosts: frozenset, **kwargs):
        self.files, self.hosts = files, hosts
        super().__init__(*args, **kwargs)

    def send_head(self):
        host = (self.headers.get("Host") or "").strip().lower()
        name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 \
            else host
        if name not in self.hosts:
            self.send_error(403, f"Host {host!r} is not one this server was started for")
            return None
        return super().send_head()

    def translate_path(self, path: str) -> str:
        name = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        return str(self.files.get(name, Path(self.directory) / ".not-served"))

    def end_headers(self):
        # Cross-origin isolation: SharedArrayBuffer, so LiteRT.js may run its threaded WebAssembly build.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # a quiet server: the page reports what happens
        pass


class _Server(ThreadingHTTPServer):
    """At most `MAX_CONNECTIONS` connections at once, each a thread: one past that is closed unanswered."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def serve(model: Path, host: str = "127.0.0.1", port: int = 8000, web_dir: Path = WEB_DIR,
          allowed_hosts=()) -> ThreadingHTTPServer:
    """Starts serving in a background thread; returns the server (`server.url` is the page's address). Requests
    must name `host`, a loopback name or one of `allowed_hosts` in their Host header."""
    check_web_dir(web_dir)
    check_port(port)
    hosts = frozenset(h.strip().lower().strip("[]") for h in (*LOOPBACK_HOSTS, host, *allowed_hosts) if h.strip())
    handler = functools.partial(_Handler, directory=str(web_dir), files=served_files(web_dir, Path(model).resolve()),
                                hosts=hosts)
    try:
        server = _Server((host, port), handler)
    except OSError as e:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
    bound_host, bound_port = server.server_address[:2]
    server.url = f"http://{bound_host}:{bound_port}/?model=model/{Path(model).name}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def describe(model: Path) -> str:
    metadata = Metadata.load(Path(model).parent / FILENAME)
    return (f"{Path(model).name} ({Path(model).stat().st_size / 1e6:.1f} MB, {metadata.iterations} iterations, "
            f"{metadata.audio.sample_rate} Hz)")
