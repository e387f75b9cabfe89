"""The one feature path against librosa (the reference), on generated and real audio.

Tolerances: filterbanks 1e-6 absolute; STFT magnitude 1e-4 relative to the peak; log-mel
0.05 dB where the power is above -80 dB of the peak (float32 rounding grows below that);
MFCC 1e-3 relative to the largest coefficient.
"""
import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from genrescope.features import spectrogram as F  # noqa: E402
from genrescope.config import DEFAULT_FEATURES, MUSICNN_FEATURES, FeatureConfig  # noqa: E402
from genrescope.errors import GenrescopeError  # noqa: E402

from genrescope.testing import synth_music  # noqa: E402


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax,htk", [
    (22050, 2048, 128, 0.0, None, False), (16000, 512, 96, 0.0, None, False),
    (44100, 4096, 64, 30.0, 16000.0, False), (22050, 1024, 40, 0.0, 8000.0, True), (8000, 256, 20, 50.0, None, True)])
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax, htk):
    ours = F.mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    assert ours.shape == ref.shape == (n_mels, 1 + n_fft // 2)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("center,pad_mode", [(True, "constant"), (True, "reflect"), (False, "constant")])
@pytest.mark.parametrize("n_fft,hop", [(2048, 512), (512, 256)])
def test_stft_matches_librosa(center, pad_mode, n_fft, hop):
    y = synth_music(2.3, 22050, seed=1)
    ours = F.stft_magnitude(y, n_fft=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)
    ref = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=center, pad_mode=pad_mode))
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-4 * ref.max())


def _check_log_mel(y, cfg):
    ours = F.log_mel(y, cfg)
    S = librosa.feature.melspectrogram(y=y, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, center=cfg.center,
                                       pad_mode=cfg.pad_mode, power=cfg.power, htk=cfg.mel_htk, norm=cfg.mel_norm)
    if cfg.log == "db":
        ref = librosa.power_to_db(S, ref=1.0, amin=cfg.log_floor, top_db=cfg.top_db)
        loud = ref > ref.max() - 80
        assert ours.shape == ref.shape
        assert np.abs(ours - ref)[loud].max() < 0.05
        assert np.abs(ours - ref).max() < 1.0
    else:
        ref = np.log10(1 + cfg.log_scale * S)
        np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("cfg", [DEFAULT_FEATURES, MUSICNN_FEATURES, FeatureConfig(top_db=80.0),
                                 FeatureConfig(n_mels=64, fmin=20, fmax=11025, mel_htk=True, power=1.0)],
                         ids=["default", "musicnn", "top_db", "htk_power1"])
def test_log_mel_matches_librosa_generated(cfg):
    _check_log_mel(synth_music(4.0, cfg.sr, seed=2), cfg)


def test_mfcc_matches_librosa_generated():
    y = synth_music(3.0, 22050, seed=3)
    ours = F.mfcc(y, DEFAULT_FEATURES)
    ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)
    assert ours.shape == ref.shape == (20, ref.shape[1])
    np.testing.assert_allclose(ours, ref, atol=1e-3 * np.abs(ref).max())


@pytest.mark.shared_data
def test_features_match_librosa_on_real_music(shared_data):
    from genrescope.audio.decode import load_audio

    for rel in ["gtzan/clips/metal/metal.00000.wav", "gtzan/clips/classical/classical.00000.wav"]:
        y = load_audio(shared_data / rel, sr=22050)
        _check_log_mel(y, DEFAULT_FEATURES)
        ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)
        np.testing.assert_allclose(F.mfcc(y, DEFAULT_FEATURES), ref, atol=1e-3 * np.abs(ref).max())
        y16 = load_audio(shared_data / rel, sr=16000)
        _check_log_mel(y16, MUSICNN_FEATURES)


@pytest.mark.parametrize("cfg", [DEFAULT_FEATURES, MUSICNN_FEATURES, FeatureConfig(center=False)],
                         ids=["default", "musicnn_reflect", "no_center"])
@pytest.mark.parametrize("block", [100, 1023, 22050])
def test_streaming_log_mel_equals_one_shot(cfg, block):
    y = synth_music(3.1, cfg.sr, seed=4)
    one = F.log_mel(y, cfg)
    streamed = np.concatenate(list(F.iter_log_mel((y[i:i + block] for i in range(0, len(y), block)), cfg)), axis=1)
    assert streamed.shape == one.shape
    np.testing.assert_allclose(streamed, one, atol=1e-4)


def test_streaming_short_signal_and_top_db_refused():
    y = synth_music(0.01, 22050)
    assert np.concatenate(list(F.iter_log_mel([y], DEFAULT_FEATURES)), axis=1).shape == F.log_mel(y, DEFAULT_FEATURES).shape
    with pytest.raises(GenrescopeError, match="top_db"):
        list(F.iter_log_mel([y], FeatureConfig(top_db=80.0)))


@pytest.mark.parametrize("kind", F.FEATURE_KINDS)
def test_compute_invariants(kind):
    cfg = DEFAULT_FEATURES
    y = synth_music(2.0, cfg.sr)
    out = F.compute(y, cfg, kind)
    assert out.dtype == np.float32 and out.ndim == 2
    assert out.shape == (F.n_bins(cfg, kind), F.n_frames(len(y), n_fft=cfg.n_fft, hop_length=cfg.hop_length))
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(F.compute(np.zeros(cfg.sr, np.float32), cfg, kind)))  # silence stays finite


def test_bad_feature_input():
    with pytest.raises(GenrescopeError, match="mono"):
        F.log_mel(np.zeros((100, 2), np.float32), DEFAULT_FEATURES)
    with pytest.raises(GenrescopeError, match="unknown feature kind"):
        F.compute(np.zeros(1000, np.float32), DEFAULT_FEATURES, "chroma")


def test_feature_config_roundtrip_and_validation():
    cfg = FeatureConfig(sr=16000, n_mels=64)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.key() == FeatureConfig.from_dict(cfg.to_dict()).key() != DEFAULT_FEATURES.key()
    with pytest.raises(GenrescopeError):
        FeatureConfig(fmax=20000.0)  # above Nyquist at 22050 Hz
    with pytest.raises(GenrescopeError, match="unknown fields"):
        FeatureConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(Exception):
        cfg.sr = 8000  # frozen
