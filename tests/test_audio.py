import os
import tracemalloc
import warnings

import numpy as np
import pytest
import soundfile as sf

from genrescope.audio.decode import audio_info, find_audio_files, iter_audio_blocks, load_audio
from genrescope.errors import (AudioNotFoundError, AudioTooShortError, CorruptAudioError, DamagedAudioWarning,
                               EmptyAudioError, GenrescopeError, SilentAudioWarning, UnsupportedAudioError)

from genrescope.testing import synth_music

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
        "notes.wav": ((UnsupportedAudioError, CorruptAudioError), "not audio: its contents are not .wav audio"),
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


# ------------------------------------------------------------------ blocks sized by what they become
def _reference_decode(path, sr):
    """What decode gave before reads were sized by their output: the whole file, averaged to
    mono, fed to one soxr stream in reads of 131072 native frames."""
    import soxr

    y, native_sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = (y[:, 0] + y[:, 1]) * np.float32(0.5) if y.shape[1] == 2 else y[:, 0]
    if native_sr == sr:
        return y
    stream = soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality="HQ")
    out = [stream.resample_chunk(y[i:i + 131072]) for i in range(0, len(y), 131072)]
    return np.concatenate(out + [stream.resample_chunk(np.zeros(0, np.float32), last=True)])


@pytest.mark.parametrize("sr_in, channels, ext, sr", [(44100, 2, "wav", 22050), (22050, 1, "wav", 22050),
                                                      (44100, 2, "flac", 16000), (8000, 1, "flac", 22050)])
def test_decode_is_unchanged_by_output_sized_blocks(write_audio, sr_in, channels, ext, sr):
    """Normal files decode as before; an upsampled low rate (smaller reads now) stays seamless
    across block boundaries, since one soxr stream carries its filter state through them."""
    path = write_audio(f"music.{ext}", y=synth_music(20.0, sr_in, channels=channels), sr=sr_in)
    ref = _reference_decode(path, sr)
    blocks = list(iter_audio_blocks(path, sr=sr))
    assert len(blocks) > 2
    np.testing.assert_allclose(np.concatenate(blocks), ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(load_audio(path, sr=sr), ref, rtol=0, atol=1e-6)


def test_frames_per_read_bounds_both_sides():
    from genrescope.audio.decode import NATIVE_BLOCK, OUT_BLOCK, frames_per_read
    from genrescope.audio.limits import MAX_CHANNELS, SAMPLE_RATES

    for native_sr in (SAMPLE_RATES[0], 8000, 22050, 44100, 48000, 96000, SAMPLE_RATES[1]):
        for channels in range(1, MAX_CHANNELS + 1):
            for sr in (None, 16000, 22050, 48000, 192000):
                for mono in (True, False):
                    n = frames_per_read(native_sr, sr, channels, mono)
                    out = n * (sr or native_sr) / native_sr * (1 if mono else channels)
                    assert n * channels <= NATIVE_BLOCK and out <= OUT_BLOCK, (native_sr, channels, sr, mono)
                    if mono and sr == 22050 and native_sr >= 22050:
                        assert n == 131072  # the read size every normal file had before


def _hostile_files(tmp_path):
    """The issue's two decode bombs brought inside the header limits: an 8-bit WAV at the
    lowest rate holding 30 minutes (each native frame becomes 5.5 output samples at 22.05 kHz),
    and a FLAC of silence with the most channels at the highest rate (a few KB a second)."""
    import struct

    from genrescope.audio.limits import MAX_CHANNELS, SAMPLE_RATES

    low = SAMPLE_RATES[0]
    data = np.random.default_rng(0).integers(96, 160, 1799 * low).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, low, low, 1, 8)
    (tmp_path / "low_rate.wav").write_bytes(
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data)
    high = SAMPLE_RATES[1]
    with sf.SoundFile(str(tmp_path / "many_channels.flac"), "w", high, MAX_CHANNELS, format="FLAC",
                      subtype="PCM_16") as f:
        for _ in range(20):
            f.write(np.zeros((high, MAX_CHANNELS), np.int16))
    return {"low_rate.wav": (low, 1, 1799.0), "many_channels.flac": (high, MAX_CHANNELS, 20.0)}


@pytest.mark.parametrize("use_av", [False, True])
@pytest.mark.slow
def test_hostile_rates_decode_in_bounded_blocks(tmp_path, monkeypatch, use_av):
    """Every block, whatever the file's rate and channels and the target rate, holds about
    OUT_BLOCK values at most, and the decode's peak memory stays at a few blocks (before, the
    4 kHz WAV made blocks of 722,000 samples at 22.05 kHz and 12.6 million at 384 kHz)."""
    from genrescope.audio.decode import OUT_BLOCK

    files = _hostile_files(tmp_path)
    if use_av:
        pytest.importorskip("av")

        def no_libsndfile(p, notes=None):
            raise UnsupportedAudioError(p, "not a supported audio file (test: PyAV only)")

        monkeypatch.setattr("genrescope.audio.decode._open_sf", no_libsndfile)
    for name, (native_sr, channels, seconds) in files.items():
        for sr, mono in ((22050, True), (192000, True), (None, False)):
            if name == "low_rate.wav" and sr == 192000 and use_av:
                continue  # 5.5 minutes of PyAV-decoded frames at 192 kHz: slow, and the same bound
            tracemalloc.start()
            n = biggest = 0
            for block in iter_audio_blocks(tmp_path / name, sr=sr, mono=mono, warn_silent=False,
                                           duration=None if sr != 192000 else 300.0):
                n += len(block)
                biggest = max(biggest, block.size)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rate = sr or native_sr
            expect = rate * (seconds if sr != 192000 else min(seconds, 300.0))
            assert abs(n - expect) <= 0.001 * expect, (name, sr, n)
            # soxr holds back a few hundred samples of filter delay and hands them over later
            assert biggest <= 1.25 * OUT_BLOCK, f"{name} at {sr}: a block of {biggest} values"
            assert peak < 24e6, f"{name} at {sr}: decoding peaked at {peak / 1e6:.1f} MB"
