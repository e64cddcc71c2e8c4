"""A REST endpoint for client tests: it answers the metadata signature with a given wavegrad.json and every other
request with `reply`: bytes, a status code to redirect with, or a function that writes the reply itself."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def send(handler, data: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class CannedServer:
    def __init__(self, metadata_json: str, reply, location: str = ""):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("signature_name") == "metadata":
                    return send(self, json.dumps({"outputs": {"json": metadata_json}}).encode())
                if isinstance(reply, int):
                    self.send_response(reply)
                    self.send_header("Location", location)
                    self.end_headers()
                    return
                return reply(self) if callable(reply) else send(self, reply)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1/models/wavegrad"

    def close(self):
        self.http.shutdown()
