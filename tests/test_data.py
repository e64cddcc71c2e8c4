import numpy as np
import soundfile as sf
import librosa
import pytest

from conftest import SPEECH, TINY
from wavegrad_tf import data
from wavegrad_tf.audio import AudioError, list_audio_files, load_audio
from wavegrad_tf.errors import UserError
from wavegrad_tf.mel import log_mel_spectrogram
from wavegrad_tf.train_lib import measure_prior


@pytest.fixture
def messy_folder(tmp_path, speech):
    """Real speech plus a corrupt, an empty, a silent, a too-short and a stereo 44.1 kHz file."""
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for path in SPEECH[:3]:
        sf.write(folder / f"{path.stem}.wav", load_audio(path, 16000), 16000)
    stereo = librosa.resample(speech, orig_sr=16000, target_sr=44100)
    sf.write(folder / "sub" / "stereo44k.wav", np.stack([stereo, 0.5 * stereo], 1), 44100)
    sf.write(folder / "quiet.flac", np.zeros(16000, np.float32), 16000)
    sf.write(folder / "short.ogg", speech[:500], 16000)
    sf.write(folder / "empty.wav", np.zeros((0,), np.float32), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" + bytes(100))
    return folder


def test_stereo_44k_is_mixed_down_and_resampled(messy_folder, speech):
    audio = load_audio(messy_folder / "sub" / "stereo44k.wav", 16000)
    assert audio.ndim == 1 and abs(len(audio) - len(speech)) <= 2
    # mean of (x, 0.5 x) is 0.75 x: check the level and the waveform after two resamplings
    n = min(len(audio), len(speech)) - 1000
    assert np.corrcoef(audio[1000:n], 0.75 * speech[1000:n])[0, 1] > 0.99
    assert abs(np.std(audio) / np.std(0.75 * speech) - 1) < 0.01


def test_bad_files_are_skipped_counted_and_named(messy_folder, tiny_cfg, tmp_path):
    corpus = data.prepare_corpus(messy_folder, tiny_cfg, tmp_path / "cache")
    assert {c.source.split("/")[-1] for c in corpus.clips} == {p.stem + ".wav" for p in SPEECH[:3]} | {"stereo44k.wav"}
    reasons = {k.split("/")[-1]: v.split(" ")[0] for k, v in corpus.skipped.items()}
    assert reasons == {"corrupt.wav": "corrupt", "empty.wav": "empty", "quiet.flac": "silent",
                       "short.ogg": "too-short"}
    assert "4 of 8 files usable; skipped 4: 1 corrupt, 1 empty, 1 silent, 1 too-short" == corpus.summary()
    # A second pass reads the cache and agrees.
    again = data.prepare_corpus(messy_folder, tiny_cfg, tmp_path / "cache")
    assert [c.cache for c in again.clips] == [c.cache for c in corpus.clips]


def test_errors_name_the_file():
    with pytest.raises(AudioError, match=r"nowhere\.wav: corrupt"):
        load_audio("nowhere.wav", 16000)
    with pytest.raises(UserError, match="--data_dir /no/such/dir: not a folder"):
        list_audio_files("/no/such/dir")


def test_ljspeech_metadata(tmp_path, speech):
    (tmp_path / "wavs").mkdir()
    for i in ("LJ001-0001", "LJ001-0002"):
        sf.write(tmp_path / "wavs" / f"{i}.wav", speech, 16000)
    (tmp_path / "wavs" / "unlisted.wav").write_bytes(b"")
    (tmp_path / "metadata.csv").write_text('LJ001-0001|Printing, "in the only sense"|x\nLJ001-0002|b|b\n')
    assert [p.name for p in list_audio_files(tmp_path)] == ["LJ001-0001.wav", "LJ001-0002.wav"]


def test_crops_are_hop_aligned_and_match_their_mel(tiny_cfg, tmp_path):
    """Each crop is found in its source at a multiple of the hop, and its mel frames are the source's frames
    there (the full-clip front end); the noisy audio is the paper's mixture."""
    corpus = data.prepare_corpus(SPEECH[0].parent, tiny_cfg, tmp_path / "cache")
    train, val = data.split(corpus.clips, 0.1, seed=1)
    assert len({c.source for c in val}) == 7 and not {c.source for c in train} & {c.source for c in val}
    cfg = measure_prior(tiny_cfg, train)
    batch = next(iter(data.dataset(train[:2], cfg, 4, seed=0)))
    seg, hop = tiny_cfg.train.segment_length, tiny_cfg.audio.hop_length
    assert batch["audio"].shape == (4, seg) and batch["mel"].shape == (4, seg // hop, 64)
    sources = [load_audio(c.source, 16000) for c in train[:2]]
    for crop, crop_mel in zip(batch["audio"].numpy(), batch["mel"].numpy()):
        hits = [(s, k) for s in sources for k in range(0, len(s) - seg + 1, hop)
                if np.allclose(s[k:k + seg], crop, atol=1e-4)]
        assert hits
        source, start = hits[0]
        cached = (np.clip(source, -1, 1) * 32767).astype(np.int16) / 32767.0  # what the 16-bit cache holds
        expected = log_mel_spectrogram(cached, tiny_cfg.audio, use_tf=False)[start // hop:start // hop + seg // hop]
        np.testing.assert_allclose(crop_mel, expected, atol=5e-3)  # a frame off would be ~0.5
    level = batch["noise_level"].numpy()[:, None]
    np.testing.assert_allclose(batch["noisy_audio"], level * batch["audio"] + np.sqrt(1 - level ** 2) * batch["noise"],
                               atol=1e-5)


def test_training_on_a_messy_folder_reports_bad_files(messy_folder, tmp_path, capsys):
    from wavegrad_tf import train_lib

    metrics = train_lib.run(TINY, str(tmp_path / "run"), steps=3, data_dir=str(messy_folder),
                        overrides=["train.log_every=1"])
    out = capsys.readouterr().out
    assert "4 of 8 files usable; skipped 4" in out and "corrupt.wav: corrupt" in out
    assert metrics["step"] == 3 and np.isfinite(metrics["loss"])
