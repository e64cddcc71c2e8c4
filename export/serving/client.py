"""Vocode through TF Serving, over REST or gRPC.

    python -m export.serving.client --server localhost:8501 --input speech.wav --output out.wav --sample_rate 16000
    python -m export.serving.client --server localhost:8500 --protocol grpc --input mel.npy --output out.wav \
        --sample_rate 16000 --seed 3

A wav is turned into a mel by the server (`mel_from_audio`), so the client needs no DSP. Long mels are
sent in overlapping chunks of at most --max_frames, crossfaded like the Keras path. With --seed, the
client sends position-keyed noise to `vocode_with_noise` (reproducible); otherwise `serving_default`
draws it in the graph. Needs `pip install --no-deps tensorflow-serving-api==2.21.0` for gRPC.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Optional

import numpy as np
from absl import app, flags

from wavegrad_tf.infer import check_mel, chunked, read_input
from wavegrad_tf.noise import PositionalNoise

FLAGS = flags.FLAGS


class ServingError(RuntimeError):
    """The server refused a request; the message is the server's."""


class RestTransport:
    def __init__(self, server: str, model: str, timeout: float = 600):
        self.url, self.timeout = f"http://{server}/v1/models/{model}", timeout

    def status(self) -> dict:
        with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
            return json.load(r)

    def predict(self, signature: str, inputs: dict) -> dict:
        body = json.dumps({"signature_name": signature,
                           "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}).encode()
        request = urllib.request.Request(f"{self.url}:predict", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                outputs = json.load(r)["outputs"]
        except urllib.error.HTTPError as e:
            raise ServingError(json.loads(e.read() or b"{}").get("error", str(e))) from None
        return {k: np.asarray(v) for k, v in outputs.items()}


class GrpcTransport:
    def __init__(self, server: str, model: str, timeout: float = 600):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        options = [("grpc.max_send_message_length", 1 << 30), ("grpc.max_receive_message_length", 1 << 30)]
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server, options))
        self.model, self.timeout = model, timeout

    def predict(self, signature: str, inputs: dict) -> dict:
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
            raise ServingError(f"{e.code().name}: {e.details()}") from None
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def vocode(transport, mel: np.ndarray, n_mels: int, hop: int, steps: int, seed: Optional[int] = None,
           max_frames: int = 4000, overlap_frames: int = 32) -> np.ndarray:
    """Audio [frames * hop] for a log-mel [frames, n_mels], one Predict call per chunk."""
    mel = check_mel(mel, n_mels)
    noise = PositionalNoise(seed) if seed is not None else None

    def synthesize(begin, end):
        inputs = {"mel": mel[None, begin:end], "lengths": np.array([end - begin], np.int32)}
        if noise is None:
            return transport.predict("serving_default", inputs)["audio"][0]
        inputs["noise"] = noise.per_step(steps, begin * hop, (end - begin) * hop)
        return transport.predict("vocode_with_noise", inputs)["audio"][0]

    return chunked(len(mel), hop, synthesize, max_frames, overlap_frames)


def define_flags():
    """Command-line flags, defined only when run as a script."""
    flags.DEFINE_string("server", "localhost:8501", "host:port (8501 REST, 8500 gRPC by default).")
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Transport.")
    flags.DEFINE_string("model", "wavegrad", "Model name on the server.")
    flags.DEFINE_string("input", None, "A wav/flac/ogg or a log-mel .npy [frames, n_mels].", required=True)
    flags.DEFINE_string("output", None, "Output .wav.", required=True)
    flags.DEFINE_integer("sample_rate", None, "The model's sample rate (its config's audio.sample_rate).",
                         required=True)
    flags.DEFINE_integer("hop_length", None, "The model's hop; default: read from the server's answer.")
    flags.DEFINE_integer("seed", None, "Reproducible output through vocode_with_noise.")
    flags.DEFINE_integer("steps", 6, "Sampling steps of the export (for --seed).")
    flags.DEFINE_integer("max_frames", 4000, "Frames per request (the export's limit).")


def main(argv):
    del argv
    from wavegrad_tf.audio import save_wav

    transport = (RestTransport if FLAGS.protocol == "rest" else GrpcTransport)(FLAGS.server, FLAGS.model)
    # The server checks the mel's bins; the mel of a wav is computed server-side.
    mel, length = read_input(FLAGS.input, FLAGS.sample_rate, lambda audio: transport.predict(
        "mel_from_audio", {"audio": audio[None]})["mel"][0])
    # One frame tells the hop: the server returns frames * hop samples.
    hop = FLAGS.hop_length or int(transport.predict("serving_default", {
        "mel": np.asarray(mel[None, :1], np.float32), "lengths": np.array([1], np.int32)})["audio"].shape[1])
    out = vocode(transport, mel, mel.shape[-1], hop, FLAGS.steps, FLAGS.seed, FLAGS.max_frames)[:length]
    save_wav(FLAGS.output, out, FLAGS.sample_rate)
    print(f"wrote {FLAGS.output}: {len(out) / FLAGS.sample_rate:.2f} s")


if __name__ == "__main__":
    define_flags()
    app.run(main)
