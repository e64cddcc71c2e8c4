"""A stand-in for tensorflow_model_server (not installable here): TF Serving's REST API (:predict in the
row "instances" and columnar "inputs" forms, model status) and gRPC PredictionService/Predict, answered
from an exported SavedModel on 127.0.0.1. Errors map as the real server's do: a malformed request or bad
input is HTTP 400 with an "error" field / gRPC INVALID_ARGUMENT; an unknown signature is 400 /
FAILED_PRECONDITION ("Serving signature name ... not found"); an unknown model 404 / NOT_FOUND."""

from __future__ import annotations

import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


class SignatureNotFound(KeyError):
    pass


def _json(value):
    """A tensor's value as TF Serving writes it in JSON: strings as text."""
    if isinstance(value, bytes):
        return value.decode()
    return value.tolist() if not isinstance(value, np.ndarray) or value.dtype != object else [_json(v) for v in value]


class StubServer:
    def __init__(self, base_path: Path, name: str):
        self.version = max(int(p.name) for p in Path(base_path).iterdir() if p.name.isdigit())
        self.model, self.name = tf.saved_model.load(str(Path(base_path) / str(self.version))), name
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.grpc = grpc.server(futures.ThreadPoolExecutor(2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self._servicer(), self.grpc)
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        self.rest = f"127.0.0.1:{self.http.server_address[1]}"
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"

    def close(self):
        self.http.shutdown()
        self.grpc.stop(None)

    def predict(self, signature: str, inputs: dict) -> dict:
        if signature not in self.model.signatures:
            raise SignatureNotFound(f'Serving signature name: "{signature}" not found in signature def')
        fn = self.model.signatures[signature]
        specs = fn.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ValueError(f"input size does not match signature: {len(inputs)}!={len(specs)} len({sorted(inputs)}) "
                             f"!= len({sorted(specs)})")
        return {k: v.numpy() for k, v in fn(**{k: tf.constant(np.asarray(v), specs[k].dtype)
                                               for k, v in inputs.items()}).items()}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") != f"/v1/models/{server.name}":
                    return self._reply(404, {"error": f"Servable not found for request: {self.path}"})
                self._reply(200, {"model_version_status": [{"version": str(server.version), "state": "AVAILABLE",
                                                            "status": {"error_code": "OK", "error_message": ""}}]})

            def do_POST(self):
                prefix = f"/v1/models/{server.name}"
                if not (self.path.startswith(prefix) and self.path.endswith(":predict")):
                    return self._reply(404, {"error": f"Servable not found for request: {self.path}"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError as e:
                    return self._reply(400, {"error": f"JSON Parse error: {e}"})
                try:
                    if not isinstance(body, dict):
                        raise ValueError("JSON Value: not an object. Expecting object with 'instances' or 'inputs'")
                    signature = body.get("signature_name", "serving_default")
                    if "instances" in body:  # row form: a list of per-example dicts
                        rows = body["instances"]
                        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
                            raise ValueError("'instances' must be a non-empty list of objects")
                        inputs = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
                        out = server.predict(signature, inputs)
                        return self._reply(200, {"predictions": [{k: _json(v[i]) for k, v in out.items()}
                                                                 for i in range(len(rows))]})
                    if not isinstance(body.get("inputs"), dict):
                        raise ValueError("Missing 'inputs' or 'instances' key")
                    out = server.predict(signature, body["inputs"])
                    self._reply(200, {"outputs": {k: _json(v) for k, v in out.items()}})
                except (tf.errors.InvalidArgumentError, ValueError, TypeError, KeyError) as e:
                    # str(KeyError) wraps its message in quotes; TF Serving's message has none
                    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                    self._reply(400, {"error": getattr(e, "message", None) or str(message)})

        return Handler

    def _servicer(self):
        server = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                if request.model_spec.name != server.name:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}")
                try:
                    out = server.predict(request.model_spec.signature_name or "serving_default",
                                         {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
                except SignatureNotFound as e:
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION, e.args[0])
                except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", None) or str(e))
                response = predict_pb2.PredictResponse()
                for k, v in out.items():
                    response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
                return response

        return Servicer()
