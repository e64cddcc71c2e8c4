"""The vocoding runtime, without TensorFlow: position-keyed noise, input checks and streaming analysis, the
export metadata, and the `Vocoder` interface every backend implements (`wavegrad_tf.vocoders`)."""

from wavegrad_tf.runtime.inputs import InputError, check_mel, check_output, open_input
from wavegrad_tf.runtime.metadata import DEFAULT_MAX_FRAMES, Metadata, MetadataError
from wavegrad_tf.runtime.noise import PositionalNoise
from wavegrad_tf.runtime.vocoder import ITERATE_BOUND, Vocoder

__all__ = ["DEFAULT_MAX_FRAMES", "ITERATE_BOUND", "InputError", "Metadata", "MetadataError", "PositionalNoise", "Vocoder",
           "check_mel", "check_output", "open_input"]
