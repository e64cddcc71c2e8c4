"""The WaveGrad network (Chen et al. 2020, Fig. 3-6) as Keras 3 layers. Tensors are [batch, time, channels]."""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers, ops

_PACKAGE = "wavegrad_tf"


def _lrelu(x):
    return ops.leaky_relu(x, negative_slope=0.2)


def _upsample(x, factor: int):
    """Nearest-neighbour repetition along time, as a broadcast multiply and a reshape: parameter-free, and
    (unlike ops.repeat, which becomes TFLite's TILE) run by XNNPACK."""
    if factor == 1:
        return x
    held = ops.expand_dims(x, 2) * ops.ones((1, 1, factor, 1), x.dtype)
    return ops.reshape(held, (-1, ops.shape(x)[1] * factor, x.shape[-1]))


_LRELU_GAIN = 2.0 / (1.0 + 0.2**2)  # keeps the variance through a LeakyReLU(0.2) (He et al. 2015)
_BRANCH_GAIN = 0.01  # convs that start small: a UBlock half's last, so the stack starts near its residual path


def _conv(channels: int, kernel: int, init: str, gain: float = 1.0, bias: float | list = 0.0,
          **kwargs) -> layers.Conv1D:
    """A 'same' Conv1D. init "glorot" is Keras' default (zero bias); "fan_in" draws with variance gain / fan_in,
    so activations keep their scale through the network and the untrained output has std about 1, and starts
    the bias at `bias`."""
    if init == "glorot":
        return layers.Conv1D(channels, kernel, padding="same", **kwargs)
    return layers.Conv1D(channels, kernel, padding="same",
                         kernel_initializer=keras.initializers.VarianceScaling(gain, "fan_in", "truncated_normal"),
                         bias_initializer=keras.initializers.Constant(bias), **kwargs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NoiseLevelEncoding(layers.Layer):
    """Transformer sinusoidal encoding of C * noise_level: [batch] -> [batch, 1, dim].

    Always float32: at C = 5000 the phase needs more precision than float16 holds.
    """

    def __init__(self, dim: int, scale: float = 5000.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if dim % 2:
            raise ValueError(f"NoiseLevelEncoding: dim must be even, got {dim}")
        self.dim, self.scale = dim, scale

    def call(self, noise_level):
        half = self.dim // 2
        freqs = ops.exp(-math.log(1e4) * ops.arange(half, dtype="float32") / half)
        phase = self.scale * ops.cast(ops.reshape(noise_level, (-1, 1)), "float32") * freqs[None, :]
        return ops.concatenate([ops.sin(phase), ops.cos(phase)], axis=-1)[:, None, :]

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FiLM(layers.Layer):
    """Feature-wise linear modulation from one waveform-path resolution: returns (scale, shift)."""

    def __init__(self, channels: int, out_channels: int, noise_scale: float, init: str, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.out_channels, self.noise_scale, self.init = channels, out_channels, noise_scale, init
        self.encoding = NoiseLevelEncoding(channels, noise_scale, name="encoding")
        self.input_conv = _conv(channels, 3, init, dtype=self.dtype_policy, name="input_conv")
        # fan_in: scale starts near 1 and shift near 0, so the untrained UBlocks respond about linearly to the
        # noisy waveform (a random scale compounds through the stack and diverges when sampling from noise).
        self.output_conv = _conv(2 * out_channels, 3, init, _BRANCH_GAIN, [1.0] * out_channels + [0.0] * out_channels,
                                 dtype=self.dtype_policy, name="output_conv")

    def build(self, x_shape, noise_level_shape=None):
        # Keras builds a deserialized layer from its input shapes, not by calling it: every sublayer built here.
        self.input_conv.build(x_shape)
        self.output_conv.build((*x_shape[:-1], self.channels))

    def call(self, x, noise_level):
        h = _lrelu(self.input_conv(x))
        h = h + ops.cast(self.encoding(noise_level), h.dtype)
        scale, shift = ops.split(self.output_conv(h), 2, axis=-1)
        return scale, shift

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "out_channels": self.out_channels,
                "noise_scale": self.noise_scale, "init": self.init}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UBlock(layers.Layer):
    """Upsampling block: four dilated convs in two residual halves, each modulated by the FiLM."""

    def __init__(self, channels: int, factor: int, dilations, init: str, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.factor, self.dilations, self.init = channels, factor, tuple(dilations), init
        # A non-resampling block (WaveGrad Large's extra ones) keeps its width: identity residual.
        self.residual_conv = None if factor == 1 else _conv(
            channels, 1, init, dtype=self.dtype_policy, name="residual_conv")
        # Convs 1 and 3 end the two residual halves.
        self.convs = [_conv(channels, 3, init, _LRELU_GAIN * (_BRANCH_GAIN if i % 2 else 1.0), dilation_rate=d,
                            dtype=self.dtype_policy, name=f"conv_{i}") for i, d in enumerate(self.dilations)]

    def build(self, x_shape, film_shape=None):
        batch, frames, width = x_shape
        upsampled = (batch, None if frames is None else frames * self.factor, width)
        if self.residual_conv is not None:
            self.residual_conv.build(upsampled)
        for i, conv in enumerate(self.convs):
            conv.build(upsampled if i == 0 else (*upsampled[:2], self.channels))

    def call(self, x, film):
        scale, shift = film
        residual = x if self.residual_conv is None else self.residual_conv(_upsample(x, self.factor))
        h = self.convs[0](_upsample(_lrelu(x), self.factor))
        h = self.convs[1](_lrelu(scale * h + shift))
        x = h + residual
        h = self.convs[2](_lrelu(scale * x + shift))
        h = self.convs[3](_lrelu(scale * h + shift))
        return x + h

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "factor": self.factor,
                "dilations": list(self.dilations), "init": self.init}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DBlock(layers.Layer):
    """Downsampling block: a strided depthwise conv (initialised as average pooling), a 1x1 residual,
    and three dilated convs (1, 2, 4)."""

    def __init__(self, channels: int, factor: int, init: str, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.factor, self.init = channels, factor, init
        self.downsample = layers.DepthwiseConv1D(
            factor, strides=factor, use_bias=False, dtype=self.dtype_policy, name="downsample",
            depthwise_initializer=keras.initializers.Constant(1.0 / factor))
        self.residual_conv = _conv(channels, 1, init, dtype=self.dtype_policy, name="residual_conv")
        self.convs = [_conv(channels, 3, init, _LRELU_GAIN, dilation_rate=d, dtype=self.dtype_policy,
                            name=f"conv_{i}") for i, d in enumerate((1, 2, 4))]

    def build(self, x_shape):
        batch, frames, width = x_shape
        self.downsample.build(x_shape)
        downsampled = (batch, None if frames is None else frames // self.factor, width)
        self.residual_conv.build(downsampled)
        for i, conv in enumerate(self.convs):
            conv.build(downsampled if i == 0 else (batch, downsampled[1], self.channels))

    def call(self, x):
        x = self.downsample(x)
        h = x
        for conv in self.convs:
            h = conv(_lrelu(h))
        return h + self.residual_conv(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "factor": self.factor, "init": self.init}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WaveGrad(keras.Model):
    """eps(y_noisy, mel, noise_level): inputs [batch, samples], [batch, frames, n_mels], [batch];
    output: the predicted noise [batch, frames * hop]."""

    def __init__(self, *, n_mels: int, factors, mel_channels: int, upsample_channels, upsample_dilations,
                 downsample_channels, extra_blocks: bool, noise_scale: float, mel_mean: float, mel_std: float,
                 init: str, **kwargs):
        super().__init__(**kwargs)
        self.n_mels, self.factors, self.mel_channels = n_mels, tuple(factors), mel_channels
        self.upsample_channels = tuple(upsample_channels)
        self.upsample_dilations = tuple(tuple(d) for d in upsample_dilations)
        self.downsample_channels = tuple(downsample_channels)
        self.extra_blocks, self.noise_scale = extra_blocks, noise_scale
        self.mel_mean, self.mel_std, self.init = mel_mean, mel_std, init
        policy = self.dtype_policy
        down_factors = tuple(reversed(self.factors[1:]))
        up_finest_first = tuple(reversed(self.upsample_channels))

        self.wave_conv = _conv(self.downsample_channels[0], 5, init, dtype=policy, name="wave_conv")
        self.dblocks = []
        for i, (channels, factor) in enumerate(zip(self.downsample_channels[1:], down_factors)):
            self.dblocks.append(DBlock(channels, factor, init, dtype=policy, name=f"dblock_{i}"))
        # One FiLM per waveform-path resolution, finest first; UBlocks use them deepest first.
        self.films = [FiLM(c_in, c_out, noise_scale, init, dtype=policy, name=f"film_{i}")
                      for i, (c_in, c_out) in enumerate(zip(self.downsample_channels, up_finest_first))]
        self.mel_conv = _conv(mel_channels, 3, init, dtype=policy, name="mel_conv")
        self.ublocks = []
        for i, (channels, factor, dils) in enumerate(
                zip(self.upsample_channels, self.factors, self.upsample_dilations)):
            stage = [UBlock(channels, factor, dils, init, dtype=policy, name=f"ublock_{i}")]
            if extra_blocks:
                stage.append(UBlock(channels, 1, dils, init, dtype=policy, name=f"ublock_{i}_extra"))
            self.ublocks.append(stage)
        self.out_conv = _conv(1, 3, init, dtype="float32", name="out_conv")

    @property
    def hop_length(self) -> int:
        return math.prod(self.factors)

    def call(self, inputs):
        audio, mel, noise_level = inputs
        x = self.wave_conv(ops.expand_dims(ops.cast(audio, self.compute_dtype), -1))
        films = [self.films[0](x, noise_level)]
        for block, film in zip(self.dblocks, self.films[1:]):
            x = block(x)
            films.append(film(x, noise_level))
        mel = (ops.cast(mel, "float32") - self.mel_mean) / self.mel_std
        h = self.mel_conv(ops.cast(mel, self.compute_dtype))
        for stage, film in zip(self.ublocks, reversed(films)):
            for block in stage:
                h = block(h, film)
        return ops.squeeze(self.out_conv(h), -1)

    def build(self, input_shape=None):
        # Create every variable up front so weights load into a fresh model without a forward pass.
        frames = 2
        self.call([ops.zeros((1, frames * self.hop_length)), ops.zeros((1, frames, self.n_mels)),
                   ops.zeros((1,))])

    def get_config(self):
        return {**super().get_config(), "n_mels": self.n_mels, "factors": list(self.factors),
                "mel_channels": self.mel_channels, "upsample_channels": list(self.upsample_channels),
                "upsample_dilations": [list(d) for d in self.upsample_dilations],
                "downsample_channels": list(self.downsample_channels),
                "extra_blocks": self.extra_blocks, "noise_scale": self.noise_scale,
                "mel_mean": self.mel_mean, "mel_std": self.mel_std, "init": self.init}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name: str, dtype: str = "float32") -> "WaveGrad":
        """A pretrained model's network with its weights, by name (keras-hub's meaning of a preset):
        `WaveGrad.from_preset("asterisk-16k")`. A config preset ('base', 'demo', ...) has no weights: its untrained
        network is `build_model(load_config("demo"))`."""
        from wavegrad_tf import pretrained
        from wavegrad_tf.errors import UserError
        from wavegrad_tf.runs import Run

        if name not in pretrained.names():
            raise UserError(f"{name!r}: not a pretrained model (pretrained: {', '.join(pretrained.names())}); an "
                            f"untrained network of a config preset is build_model(load_config({name!r}))")
        return load_network(Run.open(name), dtype)


def build_model(cfg, **kwargs) -> WaveGrad:
    """A built WaveGrad for a `Config`."""
    model = WaveGrad(n_mels=cfg.audio.n_mels, **dataclasses.asdict(cfg.model), **kwargs)
    model.build()
    return model


def load_network(run, dtype: str = "float32") -> WaveGrad:
    """A `runs.Run`'s WaveGrad with its newest intact checkpoint's averaged weights (or a pretrained model's
    weights), computing in `dtype`."""
    from wavegrad_tf import hardware

    hardware.configure_tensorflow()
    network = build_model(run.config, dtype=dtype)
    run.check_finite(network, run.restore_weights(network))
    return network
