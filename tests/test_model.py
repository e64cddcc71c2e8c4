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
    count = build_model(load_config(name, overrides)).count_params()
    assert abs(count - expected) / expected <= tolerance, count


def test_a_preset_is_a_pretrained_model_loaded_by_name():
    """keras-hub's meaning: from_preset loads a pretrained model's weights; a config preset has none to load."""
    from wavegrad_tf.runs import Run

    network = WaveGrad.from_preset("asterisk-16k")
    stored = np.load(Run.open("asterisk-16k").folder / "weights.npz")
    np.testing.assert_array_equal(network.weights[0].numpy(), stored[network.weights[0].path.split("/", 1)[1]])
    with pytest.raises(ValueError, match=r"'demo': not a pretrained model .*build_model\(load_config\('demo'\)\)"):
        WaveGrad.from_preset("demo")


def test_shapes_at_every_resolution(monkeypatch):
    """Base: waveform path at 1, 1/2, 1/4, 1/12, 1/60 of the audio rate; UBlocks back up x5, x5, x3, x2, x2.
    The shapes are recorded from the model's own forward pass."""
    model = build_model(load_config("base"))
    seen = {}
    for layer in [*model.dblocks, *model.films, *[b for stage in model.ublocks for b in stage]]:
        def record(*args, _layer=layer, _call=layer.call, **kwargs):
            out = _call(*args, **kwargs)
            seen[_layer.name] = tuple((out[0] if isinstance(out, tuple) else out).shape)
            return out
        monkeypatch.setattr(layer, "call", record)
    frames = 3
    out = model([np.random.randn(2, frames * 300).astype("float32"), np.random.randn(2, frames, 128).astype("float32"),
                 np.array([0.3, 0.9], "float32")])
    assert [seen[f"dblock_{i}"] for i in range(4)] == [(2, 450, 128), (2, 225, 128), (2, 75, 256), (2, 15, 512)]
    assert [seen[f"film_{i}"] for i in range(5)] == [(2, 900, 128), (2, 450, 128), (2, 225, 256), (2, 75, 512),
                                                     (2, 15, 512)]
    assert [seen[f"ublock_{i}"] for i in range(5)] == [(2, 15, 512), (2, 75, 512), (2, 225, 256), (2, 450, 128),
                                                       (2, 900, 128)]
    assert tuple(out.shape) == (2, 900)


def test_noise_level_encoding_matches_formula():
    enc = NoiseLevelEncoding(8, scale=5000.0)
    level = np.array([0.25, 1.0], "float32")
    out = np.asarray(enc(level))
    freqs = np.exp(-np.log(1e4) * np.arange(4) / 4)
    phase = 5000.0 * level[:, None] * freqs
    np.testing.assert_allclose(out[:, 0], np.concatenate([np.sin(phase), np.cos(phase)], -1), atol=2e-3)
    assert out.shape == (2, 1, 8)


@pytest.mark.parametrize("preset", ["demo", "base"])
def test_untrained_output_has_unit_scale_on_speech_features(preset, speech):
    """With the fan-in initialisation and the in-network mel standardisation, the untrained network's output
    std on real speech mels lies in [0.5, 2] (the noise it must predict has std 1); with Keras' Glorot
    default and raw ln-mels (this project's earlier setting) it lies above."""
    from wavegrad_tf.mel import log_mel_spectrogram

    def output_std(overrides):
        """Over 4 initialisations: one draw of the weights varies it 2 to 5x."""
        cfg = load_config(preset, overrides + ["audio.sample_rate=16000", "audio.fmax=8000"])
        frames = 12
        mel = log_mel_spectrogram(speech[:frames * cfg.audio.hop_length * 2], cfg.audio, use_tf=False)
        mel = np.stack([mel[:frames], mel[frames:2 * frames]])
        noisy = np.random.default_rng(0).standard_normal((2, frames * cfg.audio.hop_length)).astype("float32")
        variances = []
        for seed in range(4):
            keras.utils.set_random_seed(seed)
            out = build_model(cfg)([noisy, mel, np.array([0.5, 0.9], "float32")])
            variances.append(float(np.var(np.asarray(out))))
        return float(np.sqrt(np.mean(variances)))

    assert 0.5 <= output_std(["model.mel_mean=-5", "model.mel_std=2.5", "model.init=fan_in"]) <= 2.0
    assert output_std(["model.mel_mean=0", "model.mel_std=1", "model.init=glorot"]) > 2.0


@pytest.mark.parametrize("layer, args", [
    (FiLM(8, 12, 5000.0, "glorot", name="film"),
     lambda: (np.random.randn(2, 10, 8).astype("float32"), np.array([0.2, 0.7], "float32"))),
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
    inputs = [np.random.randn(1, 800).astype("float32"), np.random.randn(1, 4, 64).astype("float32") - 5,
              np.array([0.5], "float32")]
    path = tmp_path / "wavegrad.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, WaveGrad) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), atol=1e-6)
