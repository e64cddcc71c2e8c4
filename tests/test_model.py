import keras
import numpy as np
import pytest

from conftest import TINY
from wavegrad_tf.config import load_config
from wavegrad_tf.model import DBlock, FiLM, NoiseLevelEncoding, UBlock, WaveGrad, build_model


@pytest.mark.parametrize("name, overrides, expected, tolerance", [
    ("base", [], 15_920_993, 0.01),
    ("base", ["audio.n_mels=80"], 15_810_401, 0.01),
    ("large", [], 23_000_000, 0.05),
])
def test_parameter_counts(name, overrides, expected, tolerance):
    count = WaveGrad.from_preset(name, overrides).count_params()
    assert abs(count - expected) / expected <= tolerance, count


def test_shapes_at_every_resolution():
    """Base: waveform path at 1, 1/2, 1/4, 1/12, 1/60 of the audio rate; UBlocks back up x5, x5, x3, x2, x2."""
    model = WaveGrad.from_preset("base")
    frames, hop = 3, 300
    audio = np.random.randn(2, frames * hop).astype("float32")
    mel = np.random.randn(2, frames, 128).astype("float32")
    level = np.array([0.3, 0.9], "float32")
    x = model.wave_conv(audio[..., None])
    shapes = [tuple(x.shape)]
    for block in model.dblocks:
        x = block(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(2, 900, 32), (2, 450, 128), (2, 225, 128), (2, 75, 256), (2, 15, 512)]
    films = [model.films[0](model.wave_conv(audio[..., None]), level)]
    x = model.wave_conv(audio[..., None])
    for block, film in zip(model.dblocks, model.films[1:]):
        x = block(x)
        films.append(film(x, level))
    assert [tuple(f[0].shape) for f in films] == [(2, 900, 128), (2, 450, 128), (2, 225, 256), (2, 75, 512),
                                                   (2, 15, 512)]
    h = model.mel_conv(mel)
    ups = []
    for stage, film in zip(model.ublocks, reversed(films)):
        for block in stage:
            h = block(h, film)
        ups.append(tuple(h.shape))
    assert ups == [(2, 15, 512), (2, 75, 512), (2, 225, 256), (2, 450, 128), (2, 900, 128)]
    assert tuple(model([audio, mel, level]).shape) == (2, 900)


def test_noise_level_encoding_matches_formula():
    enc = NoiseLevelEncoding(8, scale=5000.0)
    level = np.array([0.25, 1.0], "float32")
    out = np.asarray(enc(level))
    freqs = np.exp(-np.log(1e4) * np.arange(4) / 4)
    phase = 5000.0 * level[:, None] * freqs
    np.testing.assert_allclose(out[:, 0], np.concatenate([np.sin(phase), np.cos(phase)], -1), atol=2e-3)
    assert out.shape == (2, 1, 8)


@pytest.mark.parametrize("layer, args", [
    (FiLM(8, 12, 5000.0, "glorot", name="film"), lambda: (np.random.randn(2, 10, 8).astype("float32"), np.array([0.2, 0.7], "float32"))),
    (UBlock(12, 2, (1, 2, 4, 8), "fan_in", name="ublock"),
     lambda: (np.random.randn(2, 5, 6).astype("float32"),
              (np.random.randn(2, 10, 12).astype("float32"), np.random.randn(2, 10, 12).astype("float32")))),
    (DBlock(12, 3, "fan_in", name="dblock"), lambda: (np.random.randn(2, 9, 6).astype("float32"),)),
])
def test_layers_survive_keras_serialization(layer, args):
    inputs = args()
    expected = layer(*inputs)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone(*inputs)
    clone.set_weights(layer.get_weights())
    got = clone(*inputs)
    for e, g in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
        np.testing.assert_allclose(np.asarray(e), np.asarray(g), atol=1e-6)


def test_model_survives_dot_keras_round_trip(tmp_path):
    model = build_model(load_config(TINY))
    inputs = [np.random.randn(1, 800).astype("float32"), np.random.randn(1, 4, 64).astype("float32"),
              np.array([0.5], "float32")]
    path = tmp_path / "wavegrad.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, WaveGrad) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), atol=1e-6)
