"""The shipped pretrained model: loaded by name, offline, vocoding a speaker it never heard."""

import dataclasses
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import SPEECH

from wavegrad_tf import data, mel, pretrained
from wavegrad_tf.audio import load_audio
from wavegrad_tf.config import Consistency, TrainConfig
from wavegrad_tf.model import build_model
from wavegrad_tf.vocoders import load_vocoder
from wavegrad_tf.vocoders.checkpoint import KerasVocoder

NAME = "asterisk-16k"
# The quick start's model trained from scratch (`python -m wavegrad_tf.demo --from_scratch`, 1,500 steps, about
# 5 minutes here): its averaged weights in float16, kept only to show that the threshold refuses it.
QUICK_START = Path(__file__).parent / "data" / "quick_start_from_scratch"
# Log-mel L1 of the network's own 6-step output (seed 0, without the consistency projection, which would bring
# any output's mel to the target's) on the bundled clips the quick start holds out, measured by
# `python tests/test_pretrained.py`: the shipped weights 0.663, the 5-minute model 1.581, random weights 3.182.
THRESHOLD = 1.3
NETWORK_ALONE = Consistency()


def held_out_clips():
    """The bundled speaker (never in the pretrained model's training data); the clips the quick start holds out."""
    _, held_out = data.split([data.Clip(str(p), "", 0) for p in SPEECH], TrainConfig.validation_fraction,
                             TrainConfig.seed)
    return [load_audio(c.source, 16000) for c in held_out]


@pytest.fixture(scope="module")
def clips():
    return held_out_clips()


def distance(vocoder, clips) -> float:
    a = vocoder.metadata.audio
    return float(np.mean([mel.log_mel_l1(vocoder.vocode(mel.log_mel_spectrogram(x, a, use_tf=False), seed=0), x, a,
                                         use_tf=False) for x in clips]))


def test_loads_offline_by_name_and_vocodes_a_speaker_it_never_heard(clips, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the pretrained model reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert NAME in pretrained.names() and len(clips) == 4
    vocoder = load_vocoder(NAME, consistency={"kind": "none"})
    assert vocoder.metadata.audio.sample_rate == 16000 and vocoder.metadata.iterations == 6
    assert distance(vocoder, clips) < THRESHOLD


def test_the_threshold_refuses_random_weights(clips):
    shipped = load_vocoder(NAME)
    random = KerasVocoder(shipped.cfg, build_model(shipped.cfg), dataclasses.replace(shipped.metadata,
                                                                                      consistency=NETWORK_ALONE))
    assert distance(random, clips) > 2 * THRESHOLD


def test_the_threshold_refuses_the_quick_start_model(clips):
    quick_start = load_vocoder(QUICK_START, consistency={"kind": "none"})
    assert quick_start.metadata.iterations == 6
    assert distance(quick_start, clips) > THRESHOLD


if __name__ == "__main__":
    shipped, held_out = load_vocoder(NAME, consistency={"kind": "none"}), held_out_clips()
    for name, vocoder in [("shipped", shipped),
                          ("quick start from scratch", load_vocoder(QUICK_START, consistency={"kind": "none"})),
                          ("random", KerasVocoder(shipped.cfg, build_model(shipped.cfg),
                                                  dataclasses.replace(shipped.metadata, consistency=NETWORK_ALONE)))]:
        print(f"{name}: log-mel L1 {distance(vocoder, held_out):.3f}")
