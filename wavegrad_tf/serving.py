"""Graph functions for export: the fixed-step sampler, input checks and the mel front end as tf.functions.

Each function checks its input in the graph, so a bad request is an InvalidArgument status, not a crash.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from wavegrad_tf import diffusion, mel as mel_lib

# 4000 frames is 50 s at base's 12.5 ms hop; longer inputs are vocoded in chunks by the client.
DEFAULT_MAX_FRAMES = 4000
# Diffusion steps are unrolled in the graph; beyond this the graph gets too large to be useful.
MAX_STEPS = 100


def metadata(cfg, betas: np.ndarray) -> dict:
    """What a runner of an exported graph needs beside it: the feature settings and the baked-in schedule."""
    return {"audio": cfg.to_dict()["audio"], "betas": np.asarray(betas).tolist()}


def _sampler_parts(model, cfg, betas):
    """(betas, the noise predictor, what the model sees per step) shared by every exported sampler."""
    betas = np.asarray(betas, np.float64)
    if len(betas) > MAX_STEPS:
        raise ValueError(f"schedule: {len(betas)} steps; export unrolls at most {MAX_STEPS}")

    def eps(y, mel, level):
        return model([y, mel, level], training=False)

    return betas, eps, diffusion.model_conditioning(betas, cfg.diffusion.continuous)


def serving_functions(model, cfg, betas: np.ndarray, max_frames: int = DEFAULT_MAX_FRAMES) -> dict:
    """{name: tf.function} for `serving_default` (mel, lengths), `vocode_with_noise` (mel, lengths,
    noise) and `mel_from_audio` (audio)."""
    betas, eps, conditioning = _sampler_parts(model, cfg, betas)
    steps, hop, n_mels = len(betas), cfg.audio.hop_length, cfg.audio.n_mels
    mel_spec = tf.TensorSpec([None, None, n_mels], tf.float32, name="mel")
    lengths_spec = tf.TensorSpec([None], tf.int32, name="lengths")

    def checked(mel, lengths):
        frames = tf.shape(mel)[1]
        checks = [
            tf.debugging.assert_positive(frames, message="mel: expected at least one frame"),
            tf.debugging.assert_less_equal(frames, max_frames, message=(
                f"mel: expected at most {max_frames} frames per request; vocode longer input in chunks")),
            tf.debugging.assert_equal(tf.shape(lengths)[0], tf.shape(mel)[0],
                                      message="lengths: expected one length per batch item"),
            tf.debugging.assert_positive(lengths, message="lengths: expected >= 1 frame per item"),
            tf.debugging.assert_less_equal(lengths, frames,
                                           message="lengths: expected at most the mel frame count"),
        ]
        with tf.control_dependencies(checks):
            return tf.debugging.check_numerics(mel, "mel: expected finite values, got NaN or inf")

    def padded_output(audio, lengths):
        samples = lengths * hop
        # Padded batches: samples past an item's own length are zeroed; audio_lengths says where to trim.
        return {"audio": audio * tf.sequence_mask(samples, tf.shape(audio)[1], tf.float32),
                "audio_lengths": samples}

    @tf.function(input_signature=[mel_spec, lengths_spec])
    def vocode(mel, lengths):
        mel = checked(mel, lengths)
        audio = diffusion.sample(eps, mel, hop, betas, lambda step, batch, start, length: tf.random.normal(
            tf.stack([batch, length])), conditioning=conditioning, std=diffusion.prior_std(mel, cfg))
        return padded_output(audio, lengths)

    @tf.function(input_signature=[mel_spec, lengths_spec, tf.TensorSpec([steps, None, None], tf.float32,
                                                                        name="noise")])
    def vocode_with_noise(mel, lengths, noise):
        """noise[k - 1] is the noise drawn at step k: noise[N - 1] is y_N, the others the z of each step."""
        mel = checked(mel, lengths)
        expected = tf.stack([steps, tf.shape(mel)[0], tf.shape(mel)[1] * hop])
        with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(noise), expected, message=(
                f"noise: expected [{steps}, batch, frames * {hop}]"))]):
            noise = tf.debugging.check_numerics(noise, "noise: expected finite values")
        audio = diffusion.sample(eps, mel, hop, betas, lambda step, batch, start, length: noise[step - 1],
                                 conditioning=conditioning, std=diffusion.prior_std(mel, cfg))
        return padded_output(audio, lengths)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
    def mel_from_audio(audio):
        pad = cfg.audio.win_length // 2
        with tf.control_dependencies([tf.debugging.assert_greater(tf.shape(audio)[1], pad, message=(
                f"audio: expected more than {pad} samples at {cfg.audio.sample_rate} Hz"))]):
            audio = tf.debugging.check_numerics(audio, "audio: expected finite values")
        return {"mel": mel_lib.log_mel_spectrogram(audio, cfg.audio)}

    return {"serving_default": vocode, "vocode_with_noise": vocode_with_noise, "mel_from_audio": mel_from_audio}


def on_device_function(model, cfg, betas: np.ndarray, noise_input: bool = False):
    """Batch-1 sampler for TFLite: mel [1, frames, n_mels] (-> and noise [steps, 1, frames * hop]) -> audio
    [1, frames * hop], unrolled, with no checks in the graph (TFLite has no Assert op: runners check
    input before invoke)."""
    betas, eps, conditioning = _sampler_parts(model, cfg, betas)
    steps, hop = len(betas), cfg.audio.hop_length
    mel_spec = tf.TensorSpec([1, None, cfg.audio.n_mels], tf.float32, name="mel")

    if noise_input:
        @tf.function(input_signature=[mel_spec, tf.TensorSpec([steps, 1, None], tf.float32, name="noise")])
        def vocode(mel, noise):
            return {"audio": diffusion.sample(eps, mel, hop, betas, lambda step, *_: noise[step - 1],
                                              conditioning=conditioning, std=diffusion.prior_std(mel, cfg))}
    else:
        @tf.function(input_signature=[mel_spec])
        def vocode(mel):
            return {"audio": diffusion.sample(eps, mel, hop, betas, lambda step, batch, start, length:
                                              tf.random.normal(tf.stack([batch, length])),
                                              conditioning=conditioning, std=diffusion.prior_std(mel, cfg))}
    return vocode
