"""Graph functions for export: the fixed-step sampler, input checks and the mel front end as tf.functions.

SavedModel functions check their input in the graph, so a bad request is an InvalidArgument status with a
message that names the input, not a crash or NaN audio. TFLite has no Assert op: its runner checks input
before invoke (`wavegrad_tf.runtime.check_mel`).
"""

from __future__ import annotations

import tensorflow as tf

from wavegrad_tf import diffusion, mel as mel_lib
from wavegrad_tf.runtime import Metadata

# Diffusion steps are unrolled in the graph; beyond this the graph gets too large to be useful.
MAX_STEPS = 100


def _sampler(model, cfg, betas, consistency) -> diffusion.Sampler:
    """The sampler with the model, the schedule, the prior and the consistency option baked in."""
    if len(betas) > MAX_STEPS:
        raise ValueError(f"schedule: {len(betas)} steps; export unrolls at most {MAX_STEPS}")
    return diffusion.Sampler(lambda y, mel, level: model([y, mel, level], training=False), cfg, betas, consistency)


def serving_functions(model, cfg, metadata: Metadata) -> dict:
    """{name: tf.function} for `serving_default` (mel, lengths), `vocode_with_noise` (mel, lengths, noise),
    `mel_from_audio` (audio) and `metadata` (wavegrad.json as a string)."""
    sample = _sampler(model, cfg, metadata.betas, metadata.consistency)
    steps, hop, n_mels, max_frames = metadata.iterations, cfg.audio.hop_length, cfg.audio.n_mels, metadata.max_frames
    low, high = mel_lib.plausible_range(cfg.audio)
    # Any rank and width: the checks below answer a wrong one with a message, not a shape error.
    mel_spec = tf.TensorSpec(None, tf.float32, name="mel")
    lengths_spec = tf.TensorSpec([None], tf.int32, name="lengths")

    def checked(mel, lengths):
        # Padded to three entries, so no check can fail on a shape index before the shape check reports.
        shape = tf.concat([tf.shape(mel), [-1, -1, -1]], 0)[:3]
        form = tf.debugging.Assert(tf.logical_and(tf.equal(tf.rank(mel), 3), tf.equal(shape[2], n_mels)), [
            f"mel: expected [batch, frames, {n_mels}], got shape", tf.shape(mel)])
        with tf.control_dependencies([form]):
            checks = [
                tf.debugging.assert_positive(shape[0], message="mel: expected at least one item in the batch"),
                tf.debugging.assert_positive(shape[1], message="mel: expected at least one frame"),
                tf.debugging.assert_less_equal(shape[1], max_frames, message=(
                    f"mel: expected at most {max_frames} frames per request; vocode longer input in chunks")),
                tf.debugging.assert_equal(tf.shape(lengths)[0], shape[0],
                                          message="lengths: expected as many lengths as mel has batch items"),
                tf.debugging.assert_positive(lengths, message="lengths: expected >= 1 frame per item"),
                tf.debugging.assert_less_equal(lengths, shape[1], message="lengths: expected at most the mel frame count"),
            ]
        with tf.control_dependencies(checks):
            mel = tf.debugging.check_numerics(mel, "mel: expected finite values, got NaN or inf")
            checks = [tf.debugging.assert_greater_equal(mel, low, message=f"mel: values below {low:.3g}, expected "
                                                        f"log-mel features in [{low:.3g}, {high:.3g}]"),
                      tf.debugging.assert_less_equal(mel, high, message=f"mel: values above {high:.3g}, expected "
                                                     f"log-mel features in [{low:.3g}, {high:.3g}]")]
        with tf.control_dependencies(checks):
            return tf.ensure_shape(tf.identity(mel), [None, None, n_mels])

    def padded_output(audio, lengths):
        audio = tf.debugging.check_numerics(audio, "audio: the sampler produced non-finite values")
        samples = lengths * hop
        # Padded batches: samples past an item's own length are zeroed; audio_lengths says where to trim.
        return {"audio": audio * tf.sequence_mask(samples, tf.shape(audio)[1], tf.float32), "audio_lengths": samples}

    # The sampler is traced once, in a function both vocoding signatures call: tracing it costs about as much as
    # the rest of the export, and a SavedModel holds one copy of its graph.
    @tf.function(input_signature=[tf.TensorSpec([None, None, n_mels], tf.float32),
                                  tf.TensorSpec([steps, None, None], tf.float32)])
    def sample_with(mel, noise):
        return sample(mel, lambda step, *_: noise[step - 1])

    @tf.function(input_signature=[mel_spec, lengths_spec])
    def vocode(mel, lengths):
        mel = checked(mel, lengths)
        drawn = tf.random.normal(tf.stack([steps, tf.shape(mel)[0], tf.shape(mel)[1] * hop]))
        return padded_output(sample_with(mel, drawn), lengths)

    @tf.function(input_signature=[mel_spec, lengths_spec, tf.TensorSpec([steps, None, None], tf.float32, name="noise")])
    def vocode_with_noise(mel, lengths, noise):
        """noise[k - 1] is the noise drawn at step k: noise[N - 1] is y_N, the others the z of each step."""
        mel = checked(mel, lengths)
        expected = tf.stack([steps, tf.shape(mel)[0], tf.shape(mel)[1] * hop])
        with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(noise), expected, message=(
                f"noise: expected [{steps}, batch, frames * {hop}]"))]):
            noise = tf.debugging.check_numerics(noise, "noise: expected finite values")
        return padded_output(sample_with(mel, noise), lengths)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
    def mel_from_audio(audio):
        pad = cfg.audio.win_length // 2
        with tf.control_dependencies([tf.debugging.assert_greater(tf.shape(audio)[1], pad, message=(
                f"audio: expected more than {pad} samples at {cfg.audio.sample_rate} Hz"))]):
            audio = tf.debugging.check_numerics(audio, "audio: expected finite values")
        return {"mel": mel_lib.log_mel_spectrogram(audio, cfg.audio)}

    # TF Serving refuses signatures without inputs (tensorflow/serving#1676): this one takes an ignored scalar.
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="request")])
    def metadata_fn(request):
        del request
        return {"json": tf.constant(metadata.to_json())}

    return {"serving_default": vocode, "vocode_with_noise": vocode_with_noise, "mel_from_audio": mel_from_audio,
            "metadata": metadata_fn}


def on_device_function(model, cfg, metadata: Metadata, frames: int):
    """Batch-1 sampler for TFLite: mel [1, frames, n_mels] and noise [steps, 1, frames * hop] -> audio
    [1, frames * hop], unrolled. The frame count is fixed: every shape in the graph is static, which lets the
    converter fold dilated convolutions into CONV_2D and plan all memory in one arena. The noise is an input
    (the runner draws it): TFLite's random op would be the one op outside XNNPACK."""
    sample = _sampler(model, cfg, metadata.betas, metadata.consistency)
    steps, samples = metadata.iterations, frames * cfg.audio.hop_length

    @tf.function(input_signature=[tf.TensorSpec([1, frames, cfg.audio.n_mels], tf.float32, name="mel"),
                                  tf.TensorSpec([steps, 1, samples], tf.float32, name="noise")])
    def vocode(mel, noise):
        # A SLICE per step (static begin and size) keeps the noise inside XNNPACK, where the strided slice
        # of noise[step - 1] and a SPLIT would each fall out of it.
        return {"audio": sample(mel, lambda step, *_: tf.reshape(
            tf.slice(noise, [step - 1, 0, 0], [1, 1, samples]), [1, samples]))}

    return vocode
