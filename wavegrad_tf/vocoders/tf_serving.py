"""A model served by TF Serving (a SavedModel from wavegrad_tf.export/saved_model.py), over REST or gRPC.

    http://HOST:8501/v1/models/NAME[/versions/N]     REST: JSON over HTTP, no TensorFlow needed
    grpc://HOST:8500/NAME                            gRPC: needs tensorflow and tensorflow-serving-api

The model's features, schedule and frame limit come from its `metadata` signature. With a seed the noise
is sent (position-keyed, `vocode_with_noise`: the same audio as every other backend); without one the
graph draws it (`serving_default`).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request

import numpy as np

from wavegrad_tf.errors import UserError
from wavegrad_tf.runtime import ITERATE_BOUND, Metadata, PositionalNoise, Vocoder
from wavegrad_tf.vocoders.source import ModelSource

PATTERNS = {"rest": re.compile(r"^https?://[^/]+/v1/models/[^/:]+(/versions/\d+)?/?$"),
            "grpc": re.compile(r"^grpc://(?P<server>[^/]+)/(?P<model>[^/:]+)$")}


class ServingError(UserError):
    """The server refused a request or cannot be reached; the message is the server's."""


DEFAULT_TIMEOUT = 60.0  # seconds one request may take (--timeout)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A model URL answers itself: a redirect (to another host, or to ftp://) is an error, never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise ServingError(f"{req.full_url}: the server redirected (HTTP {code}) to {newurl}; redirects are not "
                           "followed: give the model's own URL")


class RestTransport:
    """JSON over HTTP with every reply bounded: in total time (--timeout, the whole reply, not each read), in size
    (what the request can need) and in nesting."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.opener = urllib.request.build_opener(_RefuseRedirects)

    def _read(self, response, limit: int, deadline: float) -> bytes:
        body = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServingError(f"{self.url}: the reply took more than {self.timeout:g} s (--timeout)")
            with contextlib.suppress(AttributeError):  # each wait bounded by what is left of the whole
                response.fp.raw._sock.settimeout(left)
            try:
                piece = response.read1(1 << 16)
            except TimeoutError:
                raise ServingError(f"{self.url}: the reply took more than {self.timeout:g} s (--timeout)") from None
            if not piece:
                return bytes(body)
            body += piece
            if len(body) > limit:
                raise ServingError(f"{self.url}: the reply is larger than {limit:,} bytes, more than this request can "
                                   "need; is this a TF Serving REST endpoint?")

    def _call(self, request, limit: int = 1 << 20):
        deadline = time.monotonic() + self.timeout
        try:
            with self.opener.open(request, timeout=self.timeout) as r:
                body = self._read(r, limit, deadline)
            try:
                return json.loads(body)
            except ValueError:
                raise ServingError(f"{self.url}: the reply is not JSON ({body[:80]!r}); is this a TF Serving REST "
                                   "endpoint?") from None
            except RecursionError:  # the decoder recurses once per level: a reply nested past Python's stack
                raise ServingError(f"{self.url}: the reply is nested deeper than any TF Serving reply; is this a TF "
                                   "Serving REST endpoint?") from None
        except urllib.error.HTTPError as e:
            body = e.read(1 << 16)
            try:
                message = json.loads(body).get("error", body.decode(errors="replace"))
            except (ValueError, AttributeError, RecursionError):
                message = body.decode(errors="replace") or str(e)
            raise ServingError(f"{self.url}: HTTP {e.code}: {str(message)[:500]}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if "timed out" in str(reason):
                raise ServingError(f"{self.url}: no answer within {self.timeout:g} s (--timeout)") from None
            raise ServingError(f"{self.url}: cannot reach the server ({reason})") from None

    def status(self) -> dict:
        return self._call(self.url)

    def predict(self, signature: str, inputs: dict, numbers: int = 0) -> dict:
        """The reply's outputs; `numbers`: how many numbers it holds (32 bytes each is plenty, beside 1 MB)."""
        body = json.dumps({"signature_name": signature,
                           "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}).encode()
        reply = self._call(urllib.request.Request(f"{self.url}:predict", data=body,
                                                  headers={"Content-Type": "application/json"}),
                           limit=(1 << 20) + 32 * numbers)
        if not isinstance(reply, dict) or "outputs" not in reply:
            raise ServingError(f"{self.url}: the reply has no 'outputs' ({str(reply)[:80]}); expected a TF Serving "
                               "predict response")
        outputs = reply["outputs"]
        return outputs if isinstance(outputs, dict) else {"output": outputs}


class GrpcTransport:
    def __init__(self, server: str, model: str, timeout: float = DEFAULT_TIMEOUT):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        options = [("grpc.max_send_message_length", 1 << 30), ("grpc.max_receive_message_length", 1 << 30)]
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server, options))
        self.server, self.model, self.timeout = server, model, timeout

    def predict(self, signature: str, inputs: dict, numbers: int = 0) -> dict:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = self.model, signature
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v)))
        try:
            response = self.stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingError(f"grpc://{self.server}/{self.model}: {e.code().name}: {e.details()}") from None
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def transport_for(url: str, timeout: float = DEFAULT_TIMEOUT):
    if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ServingError(f"--timeout {timeout}: expected a positive number of seconds")
    if PATTERNS["rest"].match(url):
        return RestTransport(url, timeout)
    match = PATTERNS["grpc"].match(url)
    if match:
        return GrpcTransport(match["server"], match["model"], timeout)
    raise ServingError(f"--model {url}: expected http://HOST:PORT/v1/models/NAME[/versions/N] (REST) or "
                       "grpc://HOST:PORT/NAME")


class ServingVocoder(Vocoder):
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        self.url, self.transport = url, transport_for(url, timeout)
        raw = np.asarray(self.transport.predict("metadata", {"request": np.array(0, np.int32)}).get("json"),
                         object).reshape(-1)
        if raw.size != 1 or not isinstance(raw[0], (str, bytes)):
            raise ServingError(f"{url}: the metadata signature's reply has no 'json' string; expected a SavedModel of "
                               "export.saved_model")
        self.metadata = Metadata.from_json(raw[0].decode(errors="replace") if isinstance(raw[0], bytes) else raw[0],
                                           f"{url} (metadata)")
        self.chunk_frames = min(self.chunk_frames, self.metadata.max_frames or self.chunk_frames)
        self.name = f"WaveGrad on TF Serving ({self.metadata.iterations} steps)"

    def synthesize(self, mel: np.ndarray, start_sample: int, noise: PositionalNoise) -> np.ndarray:
        inputs = {"mel": mel[None], "lengths": np.array([len(mel)], np.int32)}
        samples = len(mel) * self.metadata.audio.hop_length
        if noise.fixed:
            inputs["noise"] = noise.per_step(self.metadata.iterations, start_sample, samples)
        outputs = self.transport.predict("vocode_with_noise" if noise.fixed else "serving_default", inputs,
                                         numbers=samples + 1)
        return self._checked(outputs.get("audio"), samples)

    def _checked(self, audio, samples: int) -> np.ndarray:
        """The reply's audio, if it is what the request asks for: [1, frames * hop] finite numbers within what the
        sampler can produce (it bounds every iterate by ITERATE_BOUND)."""
        try:
            audio = np.asarray(audio)
        except (TypeError, ValueError):  # ragged lists
            audio = np.asarray(None)
        if audio.dtype.kind not in "iuf":  # JSON booleans, strings, nulls or ragged lists are not samples
            raise ServingError(f"{self.url}: the reply's audio is not numbers ({audio.dtype.name}); expected [1, "
                               f"{samples}] samples for this request")
        if audio.shape != (1, samples):
            raise ServingError(f"{self.url}: the reply's audio has shape {list(audio.shape)}; expected [1, {samples}] "
                               "samples for this request")
        audio = audio.astype(np.float32)
        if not np.isfinite(audio).all():
            raise ServingError(f"{self.url}: the reply's audio holds NaN or inf")
        peak = float(np.abs(audio).max(initial=0.0))
        if peak > ITERATE_BOUND:
            raise ServingError(f"{self.url}: the reply's audio reaches {peak:.3g}, beyond the +-{ITERATE_BOUND:g} the "
                               "sampler bounds its output to: not this model's audio")
        return audio[0]


class ServingSource(ModelSource):
    """Only the server knows the model's features: they are asked for once, with the vocoder that `load` returns."""

    kind = "tf_serving"
    description = "a TF Serving URL (http://HOST:PORT/v1/models/NAME or grpc://HOST:PORT/NAME)"
    options = ("timeout",)

    def __init__(self, spec: str, flag: str = "--model"):
        super().__init__(spec, flag)
        self._vocoder, self.timeout = None, DEFAULT_TIMEOUT

    @classmethod
    def claim(cls, spec: str, flag: str):
        return cls(spec, flag) if spec.startswith(("http://", "https://", "grpc://")) else None

    def check(self, timeout=None, **options) -> None:
        super().check(**options)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout  # what asking for the features waits

    @property
    def audio_cfg(self):
        return self.load().metadata.audio

    def load(self, timeout=None, **others) -> ServingVocoder:
        if self._vocoder is None:
            self._vocoder = ServingVocoder(self.spec, self.timeout if timeout is None else timeout)
        return self._vocoder
