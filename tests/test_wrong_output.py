"""The third audit's wrong output with success, each reproduced as the audit did it: weights holding a NaN exported
and packaged, and mels of one or two frames (a regression: the mel projection's STFT could not pad them)."""

import shutil

import numpy as np
import pytest

from conftest import run_module


@pytest.fixture(scope="module")
def nan_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run whose newest checkpoint's averaged weights hold one NaN."""
    import tensorflow as tf

    from wavegrad_tf.model import load_network
    from wavegrad_tf.runs import Run, checkpoint_variables

    folder = tmp_path_factory.mktemp("nan") / "run"
    shutil.copytree(tiny_run, folder, ignore=shutil.ignore_patterns("audio_cache", "checkpoints"))
    network = load_network(Run.open(tiny_run))
    variables = checkpoint_variables(network)
    name, first = next(iter(variables.items()))
    first.assign(tf.tensor_scatter_nd_update(first, [[0] * len(first.shape)], [float("nan")]))
    tf.train.Checkpoint(ema=variables).save(str(folder / "checkpoints" / "ckpt"))  # ckpt-1, as a manager names it
    return folder, name


def test_weights_that_are_not_finite_are_refused_by_every_export_and_package(nan_run, tmp_path):
    """The audit exported a run whose weights held one NaN: exit 0, its size printed, and a .tflite that can only
    make NaN. The SavedModel and TFLite exporters, the web page's export and package now refuse it, naming the
    variable, and write nothing."""
    from wavegrad_tf.export.saved_model_lib import export_saved_model
    from wavegrad_tf.export.tflite_lib import export_tflite
    from wavegrad_tf import package_lib, pretrained, web_lib
    from wavegrad_tf.runs import Run, RunError
    from wavegrad_tf.vocoders import resolve

    folder, variable = nan_run
    message = rf"the weights of .*ckpt-1 are not finite \({variable}\); expected a run whose weights are numbers"
    for export in (lambda: export_saved_model(str(folder), tmp_path / "serving"),
                   lambda: export_tflite(str(folder), tmp_path / "tflite", variants=["float16"], signature_frames=(72,)),
                   lambda: web_lib.model_file(resolve(str(folder)), "float16", tmp_path / "web"),
                   lambda: package_lib.package(Run.open(folder), "nan-weights-test")):
        with pytest.raises(RunError, match=message):
            export()
    assert sorted(tmp_path.iterdir()) == [] and not (pretrained.DIR / "nan-weights-test").exists()


def test_the_export_command_refuses_them_in_one_line(nan_run, tmp_path):
    folder, variable = nan_run
    proc = run_module(["-m", "export.tflite", "--model", str(folder), "--output", str(tmp_path / "t")], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: --model {folder}: the weights of ")
    assert variable in proc.stderr and not (tmp_path / "t").exists()


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_a_mel_of_one_or_two_frames_vocodes_with_the_projection(tiny_vocoder, tiny_model_and_mel, frames):
    """A regression the audit found: a mel of 1 or 2 frames crashed (InvalidArgumentError) in the mel projection's
    STFT, which reflects win_length / 2 = 400 samples at each end of 200 or 400. The reflection now goes on in
    silence; the audio has the mel's length, and is finite and within full scale."""
    assert tiny_vocoder.metadata.consistency.kind == "mel"
    _, _, mel = tiny_model_and_mel
    audio = tiny_vocoder.vocode(mel[:frames], seed=0)
    assert audio.shape == (frames * 200,) and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


def test_the_pretrained_model_vocodes_a_single_frame(speech):
    from wavegrad_tf.mel import log_mel_spectrogram
    from wavegrad_tf.vocoders import load_vocoder

    vocoder = load_vocoder("asterisk-16k")
    mel = log_mel_spectrogram(speech[:16000], vocoder.metadata.audio, use_tf=False)
    for frames in (1, 2):
        audio = vocoder.vocode(mel[40:40 + frames], seed=0)
        assert audio.shape == (frames * 200,) and np.isfinite(audio).all()
