import re

import pytest

from conftest import TINY

from wavegrad_tf.config import ConfigError, load_config, presets


def test_presets_load_with_paper_settings():
    assert {"base", "large", "ljspeech", "demo"} <= set(presets())
    base = load_config("base")
    assert (base.audio.sample_rate, base.audio.n_mels, base.audio.hop_length) == (24000, 128, 300)
    assert (base.audio.n_fft, base.audio.win_length, base.audio.fmin, base.audio.fmax) == (2048, 1200, 20, 12000)
    assert base.model.factors == (5, 5, 3, 2, 2) and base.train.segment_length == 7200
    lj = load_config("ljspeech")
    assert (lj.audio.sample_rate, lj.audio.n_mels, lj.audio.hop_length, lj.model.factors) == (
        22050, 80, 256, (4, 4, 4, 2, 2))
    assert load_config("large").train.segment_length == 18000


def test_overrides_are_typed():
    cfg = load_config("demo", ["train.batch_size=8", "diffusion.continuous=false"])
    assert cfg.train.batch_size == 8 and cfg.diffusion.continuous is False


@pytest.mark.parametrize("override, field", [
    ("model.factors=[5,5,3,2,3]", "model.factors"),          # product 450 != hop 300
    ("train.batchsize=3", "batchsize"),                      # unknown key
    ("audio.n_mels=-80", "audio.n_mels"),                    # negative size
    ("model.upsample_channels=[512,512,256,128]", "model.upsample_channels"),
    ("train.segment_length=7000", "train.segment_length"),   # not a multiple of hop
    ("audio.fmax=20000", "audio.fmin/fmax"),                 # above Nyquist
    ("train.batch_size=2.5", "train.batch_size"),            # not an integer
    ("diffusion.inference_schedule=nope-7", "diffusion.inference_schedule"),
])
def test_bad_config_names_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
        load_config("base", [override])


def test_bad_yaml_file_names_file_and_field(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: base\nmodel:\n  factors: [4, 4, 4, 2, 2]\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: model\.factors: product 256"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown config 'nosuch'"):
        load_config("nosuch")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("large")
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("overrides, message", [
    (["train.infer_items=0"], "train.infer_items: expected from 1 to batch_size (4), got 0"),
    (["train.infer_items=5"], "train.infer_items: expected from 1 to batch_size (4), got 5"),
    (["train.infer_loss_weight=-1"], "train.infer_loss_weight: expected >= 0, got -1.0"),
    (["train.infer_schedules=[[0.5, 0.1]]"], "train.infer_schedules[0]: schedule: expected non-decreasing betas"),
    (["train.infer_schedules=linear-1000"], "train.infer_schedules: expected a list of schedules, got 'linear-1000'"),
    (["train.infer_schedules=[linear-1000]"], "train.infer_schedules[0]: more than 50 steps: the loss unrolls"),
    (["train.infer_loss_weight=1", "diffusion.continuous=false"],
     "train.infer_loss_weight: a discrete-index model (diffusion.continuous: false) samples only with its training"),
])
def test_infergrad_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(TINY, overrides)


def test_infergrad_settings_round_trip(tmp_path):
    cfg = load_config(TINY, ["train.infer_loss_weight=0.1", "train.infer_schedules=[[0.001, 0.5], manual-6]"])
    cfg.save(tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg and again.train.infer_schedules == ((0.001, 0.5), "manual-6")
