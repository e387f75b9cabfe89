import os
import tracemalloc
import warnings

import numpy as np
import pytest
import soundfile as sf

from genrescope.audio.decode import audio_info, find_audio_files, iter_audio_blocks, load_audio
from genrescope.errors import (AudioNotFoundError, AudioTooShortError, CorruptAudioError, DamagedAudioWarning,
                               EmptyAudioError, GenrescopeError, SilentAudioWarning, UnsupportedAudioError)

from conftest import synth_music

FORMATS = ["wav", "au", "flac", "ogg", "opus", "mp3"]


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("sr_in,channels", [(22050, 1), (44100, 2), (48000, 2), (16000, 1)])
def test_decode_any_format_rate_channels(write_audio, ext, sr_in, channels):
    if ext == "opus" and sr_in not in (48000, 16000):  # opus only takes its own rates
        sr_in = 48000
    t = np.arange(int(1.5 * sr_in)) / sr_in
    tone = (0.4 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    y = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path = write_audio(f"tone.{ext}", y=y, sr=sr_in)
    out = load_audio(path, sr=22050)
    assert out.dtype == np.float32 and out.ndim == 1
    # mp3/opus encoders add priming delay; duration within 0.1 s
    assert abs(len(out) / 22050 - 1.5) < 0.1
    assert abs(_peak_hz(out, 22050) - 1000.0) < 15.0
    assert 0.2 < np.abs(out).max() <= 1.01
    info = audio_info(path)
    assert info.channels == channels and info.sr == sr_in


def test_keep_channels_and_native_rate(write_audio):
    path = write_audio("st.wav", duration=1.0, sr=44100, channels=2)
    y = load_audio(path, sr=None, mono=False)
    assert y.shape == (44100, 2)
    ref, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_offset_and_duration(write_audio):
    path = write_audio("long.wav", duration=5.0, sr=22050)
    full = load_audio(path, sr=22050)
    part = load_audio(path, sr=22050, offset=1.0, duration=2.0)
    assert len(part) == 2 * 22050
    np.testing.assert_allclose(part, full[22050:3 * 22050], atol=1e-6)


def test_stream_equals_whole_and_memory_is_bounded(tmp_path):
    sr = 44100
    path = tmp_path / "ten_minutes.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", sr, 2, format="FLAC") as f:  # 10 min stereo, written in pieces
        for _ in range(60):
            f.write((0.1 * rng.standard_normal((sr * 10, 2))).astype(np.float32))
    tracemalloc.start()
    n = 0
    for block in iter_audio_blocks(path, sr=22050):
        n += len(block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert abs(n - 600 * 22050) <= 1
    # the whole decoded file would be 600 s * 44100 * 2 ch * 4 B = 212 MB; streaming holds a few blocks
    assert peak < 20e6, f"streaming peaked at {peak / 1e6:.1f} MB"
    head = np.concatenate(list(iter_audio_blocks(path, sr=22050, duration=3.0)))
    np.testing.assert_allclose(head, load_audio(path, sr=22050, duration=3.0), atol=1e-6)


def test_streamed_blocks_concatenate_to_load(write_audio):
    path = write_audio("s.ogg", duration=8.0, sr=44100, channels=2)
    blocks = list(iter_audio_blocks(path, sr=16000))
    assert len(blocks) > 1
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(path, sr=16000), atol=1e-5)


# ------------------------------------------------------------------ bad input
def _bad_files(tmp_path, write_audio):
    good = write_audio("good.wav", duration=3.0)
    data = good.read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("these are my notes, not audio\n" * 40)
    (tmp_path / "cut_header.wav").write_bytes(data[:30])
    (tmp_path / "sliver.wav").write_bytes(data[:44 + 2 * 4410])  # 0.2 s of the promised 3 s
    sf.write(str(tmp_path / "zero.wav"), np.zeros(0, np.float32), 22050)
    write_audio("short.wav", y=synth_music(0.2), sr=22050)
    y = synth_music(2.0)
    y[5000] = np.nan
    write_audio("nan.wav", y=y, subtype="FLOAT")
    y = synth_music(2.0)
    y[30000] = np.inf
    write_audio("inf.wav", y=y, subtype="DOUBLE")
    y = synth_music(2.0)
    y[11025] = 3e30  # finite, but its power overflows float32
    write_audio("huge.wav", y=y, subtype="FLOAT")
    return {
        "missing.wav": (AudioNotFoundError, "file not found"),
        "empty.wav": (EmptyAudioError, "empty (0 bytes)"),
        "notes.wav": ((UnsupportedAudioError, CorruptAudioError), "not a supported audio file"),
        "cut_header.wav": ((CorruptAudioError, UnsupportedAudioError), ""),
        "sliver.wav": (CorruptAudioError, "truncated"),
        "zero.wav": (EmptyAudioError, "no audio samples"),
        "short.wav": (AudioTooShortError, "at least 1.00 s"),
        "nan.wav": (CorruptAudioError, "NaN or infinity (first at 0.23 s)"),
        "inf.wav": (CorruptAudioError, "NaN or infinity (first at 1.36 s)"),
        "huge.wav": (CorruptAudioError, "far outside [-1, 1] (peak 3e+30, first at 0.50 s)"),
    }


def _use_av(monkeypatch, use_av):
    if use_av:
        pytest.importorskip("av")
    else:
        monkeypatch.setattr("genrescope.audio.decode._have_av", lambda: False)


@pytest.mark.parametrize("use_av", [False, True])
@pytest.mark.parametrize("streamed", [False, True])
def test_bad_input_names_file_and_problem(tmp_path, write_audio, monkeypatch, use_av, streamed):
    """One policy for load_audio and iter_audio_blocks (with and without the FFmpeg fallback)."""
    _use_av(monkeypatch, use_av)
    cases = _bad_files(tmp_path, write_audio)
    for name, (exc, text) in cases.items():
        path = tmp_path / name
        with pytest.raises(exc) as info:
            if streamed:
                for _ in iter_audio_blocks(path, sr=22050):
                    pass
                raise AudioTooShortError(path, "at least 1.00 s") if name == "short.wav" else AssertionError(name)
            load_audio(path, min_duration=1.0)
        msg = str(info.value)
        assert str(path) in msg, msg
        assert text in msg, msg
        assert isinstance(info.value, GenrescopeError)


@pytest.mark.parametrize("use_av", [False, True])
@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg"])
def test_truncated_file_is_used_with_a_warning(tmp_path, write_audio, monkeypatch, use_av, ext):
    _use_av(monkeypatch, use_av)
    data = write_audio(f"good.{ext}", duration=6.0).read_bytes()
    half = tmp_path / f"half.{ext}"
    half.write_bytes(data[: len(data) // 2])
    notes: list[str] = []
    streamed = np.concatenate(list(iter_audio_blocks(half, sr=22050, notes=notes)))
    assert 2.0 < len(streamed) / 22050 < 4.0
    assert all(n.startswith(f"{half}: ") for n in notes)
    if ext != "ogg":  # Ogg has no length in its header: libsndfile reads it from the last page there is
        assert any("truncated" in n or "damaged" in n for n in notes), notes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        whole = load_audio(half, sr=22050)
    assert [str(w.message) for w in caught if issubclass(w.category, DamagedAudioWarning)] == notes
    np.testing.assert_array_equal(whole, streamed)


def test_mpg123_chatter_becomes_a_warning(tmp_path, write_audio, capfd):
    """libmpg123 prints "Note: Illegal Audio-MPEG-Header ..." to descriptor 2 by itself."""
    data = bytearray(write_audio("good.mp3", duration=5.0).read_bytes())
    rng = np.random.default_rng(1)
    for i in rng.integers(2000, len(data), 200):
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.mp3"
    bad.write_bytes(bytes(data))
    capfd.readouterr()
    notes: list[str] = []
    try:
        for _ in iter_audio_blocks(bad, notes=notes):
            pass
    except CorruptAudioError as e:
        notes.append(str(e))
    err = capfd.readouterr().err
    assert "Note:" not in err and "Illegal Audio-MPEG-Header" not in err and "Warning:" not in err, err
    assert any("damaged" in n for n in notes), notes
    import os as _os
    _os.write(2, b"other output still gets through\n")
    assert "other output" in capfd.readouterr().err


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(AudioNotFoundError, match="directory"):
        load_audio(tmp_path)


def test_silence_warns_not_fails(write_audio):
    path = write_audio("silent.wav", y=np.zeros(22050, np.float32))
    with pytest.warns(SilentAudioWarning, match="silent"):
        y = load_audio(path)
    assert len(y) == 22050
    notes: list[str] = []
    assert sum(len(b) for b in iter_audio_blocks(path, notes=notes)) == 22050
    assert len(notes) == 1 and "silent" in notes[0] and str(path) in notes[0]


def test_loud_file_does_not_warn(write_audio):
    path = write_audio("loud.wav", duration=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentAudioWarning)
        load_audio(path)


def test_bad_file_is_left_untouched(tmp_path):
    path = tmp_path / "x.mp3"
    payload = os.urandom(3000)
    path.write_bytes(payload)
    with pytest.raises(GenrescopeError):
        load_audio(path)
    assert path.read_bytes() == payload


def test_av_fallback_reads_m4a(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "tone.m4a"
    sr = 44100
    y = synth_music(2.0, sr)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    got = load_audio(path, sr=22050)
    assert abs(len(got) / 22050 - 2.0) < 0.1
    assert audio_info(path).sr == sr


def test_find_audio_files(tmp_path, write_audio):
    write_audio("a/one.wav", duration=0.5)
    write_audio("a/b/two.flac", duration=0.5)
    (tmp_path / "a" / "readme.txt").write_text("x")
    files = find_audio_files([tmp_path / "a"])
    assert [f.name for f in files] == ["two.flac", "one.wav"]  # sorted by path: a/b/two.flac < a/one.wav
    assert len(find_audio_files([str(tmp_path / "a" / "*.wav")])) == 1
    # a file named explicitly is kept even without an audio extension (so it can be reported)
    assert find_audio_files([tmp_path / "a" / "readme.txt"]) == [tmp_path / "a" / "readme.txt"]


@pytest.mark.shared_data
def test_real_files_decode(shared_data):
    for rel in ["gtzan/clips/blues/blues.00000.wav", "free-music/warzone2100/menu.opus",
                "free-music/librosa-examples/jazz/Kevin_MacLeod_-_Vibe_Ace.hq.ogg"]:
        y = load_audio(shared_data / rel, sr=22050, duration=10.0)
        assert len(y) == 10 * 22050 and np.abs(y).max() > 0.05
    with pytest.warns(SilentAudioWarning):
        load_audio(shared_data / "free-music/wesnoth/silence.ogg")


def test_headerless_au_is_not_audio(tmp_path, write_audio):
    bad = tmp_path / "junk.au"
    bad.write_bytes(os.urandom(8000))
    with pytest.raises(UnsupportedAudioError, match="junk.au"):
        load_audio(bad)
    good = write_audio("ok.au", duration=0.5)
    assert len(load_audio(good)) == 11025
