"""`genrescope filters`: the time map from a conv output index back to input frames and samples,
checked on networks whose receptive fields are known exactly."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from genrescope.config import MUSICNN_FEATURES
from genrescope.insight.filters import (
    TimeMap,
    conv_time_maps,
    find_top_chunks,
    frames_to_samples,
    write_report,
)


class Chain(nn.Module):
    """conv k3 p1 -> avgpool 2 -> conv k5 dilation 2 -> maxpool 3 -> conv k1, on (B, n_bins, T).

    By hand, output t of each conv covers input frames: c1 [t-1, t+2), c2 [2t-1, 2t+19),
    c3 [6t-1, 6t+23)."""

    def __init__(self, n_bins=8, pool=nn.MaxPool1d):
        super().__init__()
        self.c1 = nn.Conv1d(n_bins, 4, 3, padding=1)
        self.p1 = nn.AvgPool1d(2)
        self.c2 = nn.Conv1d(4, 4, 5, dilation=2)
        self.p2 = pool(3, stride=3)
        self.c3 = nn.Conv1d(4, 2, 1)

    def forward(self, x):
        return self.c3(self.p2(self.c2(self.p1(self.c1(x)))))


class Image(nn.Module):
    """Time moved to axis 2 of a 2-D conv (like musicnn), a manual pad, a max over frequency,
    two branches concatenated, then a 1-D conv: c2d [t-2, t+3); branch [t-1, t+2); mid = the
    envelope of both, widened by a k3 p1 conv: [t-3, t+4)."""

    def __init__(self, n_bins=8):
        super().__init__()
        self.c2d = nn.Conv2d(1, 3, (5, 3))
        self.branch = nn.Conv1d(n_bins, 3, 3, padding=1)
        self.mid = nn.Conv1d(6, 2, 3, padding=1)

    def forward(self, x):  # (B, n_bins, T)
        img = torch.nn.functional.pad(x.unsqueeze(1).transpose(2, 3), (0, 0, 2, 2))  # (B, 1, T + 4, n_bins)
        a = self.c2d(img).amax(dim=3)  # (B, 3, T)
        return self.mid(torch.cat([a, self.branch(x)], dim=1))


def test_chain_maps_match_the_hand_computed_fields():
    maps = conv_time_maps(Chain().eval(), torch.randn(2, 8, 100))
    assert maps["c1"][0] == TimeMap(2, 1, -1, 3)
    assert maps["c2"][0] == TimeMap(2, 2, -1, 20)
    assert maps["c3"][0] == TimeMap(2, 6, -1, 24)
    assert maps["c3"][1].shape[-1] == (((100 // 2) - 8) // 3)


def test_time_is_followed_through_transposes_pads_reductions_and_concatenation():
    maps = conv_time_maps(Image().eval(), torch.randn(1, 8, 50))
    assert maps["c2d"][0] == TimeMap(2, 1, -2, 5)
    assert maps["branch"][0] == TimeMap(2, 1, -1, 3)
    assert maps["mid"][0] == TimeMap(2, 1, -3, 7)


@pytest.mark.parametrize("net,layer", [(Chain(pool=nn.AvgPool1d), "c3"), (Image(), "mid")])
def test_fields_equal_the_gradient_support_of_a_linear_net(net, layer):
    """With positive weights and no max (average pools, a mean over frequency), the input frames
    that reach output t are exactly its receptive field: compare with autograd."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.abs() + 0.1)
    if isinstance(net, Image):
        net.forward = lambda x, n=net: n.mid(torch.cat([n.c2d(torch.nn.functional.pad(
            x.unsqueeze(1).transpose(2, 3), (0, 0, 2, 2))).mean(dim=3), n.branch(x)], dim=1))
    T = 90
    m = conv_time_maps(net.eval(), torch.randn(1, 8, T))[layer][0]
    x = torch.randn(1, 8, T, requires_grad=True)
    out = net(x) if layer == "mid" else net.c3(net.p2(net.c2(net.p1(net.c1(x)))))
    for t in (0, 3, out.shape[-1] - 1):
        (g,) = torch.autograd.grad(out[0, :, t].sum(), x, retain_graph=True)
        hit = np.flatnonzero(g[0].abs().sum(0).numpy() > 0)
        lo, hi = m.frames(t)
        assert (hit.min(), hit.max() + 1) == (max(lo, 0), min(hi, T)), (t, hit.min(), hit.max(), lo, hi)


def test_frames_to_samples_with_centred_frames():
    cfg = MUSICNN_FEATURES  # n_fft 512, hop 256
    assert frames_to_samples(0, 1, cfg, 10 ** 6) == (0, 256)  # frame 0 spans [-256, 256)
    assert frames_to_samples(10, 13, cfg, 10 ** 6) == (10 * 256 - 256, 12 * 256 + 256)
    assert frames_to_samples(10, 13, cfg, 3000) == (2304, 3000)


class Energy(nn.Module):
    """One filter summing the log-mel over 5 frames: it fires on the loudest 5 frames."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(96, 1, 5)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x).amax(dim=2)


def test_top_chunk_lands_on_the_loud_burst(tmp_path):
    import soundfile as sf

    sr = 16000
    rng = np.random.default_rng(0)
    ys = []
    for k in range(2):
        y = 0.001 * rng.standard_normal(sr * 5).astype(np.float32)
        if k == 1:
            y[int(3.2 * sr):int(3.3 * sr)] += 0.5 * rng.standard_normal(int(0.1 * sr)).astype(np.float32)
        path = tmp_path / f"f{k}.wav"
        sf.write(str(path), y, sr, subtype="FLOAT")
        ys.append(path)
    res = find_top_chunks(Energy().eval(), MUSICNN_FEATURES, ys, top=2)
    (best, second) = res["conv"][0]
    assert best.file.endswith("f1.wav") and best.end - best.start == 4 * 256 + 512  # 5 frames
    assert best.start <= int(3.25 * sr) <= best.end
    assert best.value > second.value
    index = write_report(res, tmp_path / "out", MUSICNN_FEATURES)
    assert (tmp_path / "out" / "conv" / "filter_000.wav").is_file() and (tmp_path / "out" / "conv.png").is_file()
    assert "f1.wav" in index.read_text()


@pytest.mark.slow
def test_filters_command_on_a_shipped_model(write_audio, tmp_path, capsys):
    from genrescope.commands import main

    write_audio("d/a.wav", duration=3.0, sr=16000)
    assert main(["filters", "musicnn-msd", str(tmp_path / "d"), "-o", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "conv layers" in out
    text = (tmp_path / "f" / "index.html").read_text()
    assert "midend.2.conv" in text and "timbral.0.conv" in text
    # one WAV per filter that responds to its input; most of musicnn-msd's front-end filters
    # decayed to zero weights in training: a constant output, no chunk of their own
    from genrescope.insight.filters import load_torch_model

    model = load_torch_model("musicnn-msd")[0]
    strength = torch.cat([m.weight.detach().flatten(1).abs().amax(1) for m in model.modules()
                          if isinstance(m, (nn.Conv1d, nn.Conv2d))])
    n_wav = len(list((tmp_path / "f").rglob("*.wav")))
    assert int((strength > 1e-3).sum()) <= n_wav <= int((strength > 1e-12).sum()) < 500
    assert "constant output" in text and "with a constant output" in out


def _front_activations(model, windows: np.ndarray, branch: int) -> np.ndarray:
    """(W, filters, T) musicnn timbral branch activations computed by hand, without hooks: the
    conv of the input-normalised window, flipped where the batch norm inverts the channel, max over mel."""
    import torch.nn.functional as F

    from genrescope.models.musicnn import _as_tf_image

    b = model.timbral[branch]
    with torch.no_grad():
        x = F.pad(model.input_bn(_as_tf_image(torch.from_numpy(windows))), (0, 0, *b.time_pad))
        c = F.conv2d(x, b.conv.weight, b.conv.bias)  # (W, filters, T, mels')
        scale = b.bn.weight / torch.sqrt(b.bn.running_var + b.bn.eps)
        c = c * torch.where(scale < 0, -1.0, 1.0)[None, :, None, None]
        return c.amax(dim=3).numpy()


@pytest.mark.slow
@pytest.mark.shared_data
def test_filters_of_musicnn_on_real_music_pick_their_own_maxima(shared_data):
    """On real music, different front-end filters pick different chunks, and each reported
    activation is that filter's maximum over the data (away from the window's zero padding)."""
    from collections import Counter

    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.insight.filters import load_torch_model

    files = [shared_data / "gtzan" / "audio" / g / f"{g}.00000.opus" for g in ("metal", "jazz")]
    if not all(f.is_file() for f in files):
        pytest.skip("two GTZAN tracks are not in ../shared/data")
    model, cfg, _ = load_torch_model("musicnn-msd")
    res = find_top_chunks(model, cfg, files)["timbral.0.conv"]
    live = [(c, chunks[0]) for c, chunks in enumerate(res) if chunks]
    assert 10 <= len(live) < len(res)  # its zero-weight filters get no chunk
    shared = Counter((ch.file, ch.start) for _, ch in live).most_common(1)[0][1]
    assert shared <= max(3, len(live) // 5), f"{shared} of {len(live)} filters share one chunk"
    assert sum(ch.value < 0 for _, ch in live) <= len(live) // 5
    acts = []
    for f in files:
        windows = slice_windows(compute(load_audio(f, sr=cfg.sr), cfg, "log_mel"), cfg)[0]
        acts.append(_front_activations(model, windows, 0)[:, :, 3:-3])  # fields inside the window (7 frames)
    best = np.concatenate(acts).max(axis=(0, 2))  # (filters,)
    for c, ch in live:
        assert ch.value == pytest.approx(best[c], rel=1e-4, abs=1e-4), c


@pytest.mark.parametrize("name", ["parallel-cnn-bigru", "cnn-gru", "mfcc-cnn", "timeline-cnn", "resnet-chunk"])
def test_every_conv_of_the_trainable_models_is_mapped(name):
    """The time axis survives each built-in architecture's reshapes: every conv gets a map whose
    stride matches how much shorter its output is than the input."""
    from genrescope.config import DEFAULT_FEATURES
    from genrescope.models import build_model

    model = build_model(name, feature_config=DEFAULT_FEATURES, n_classes=4).eval()
    n_bins = {"mfcc": DEFAULT_FEATURES.n_mfcc, "stft": 1 + DEFAULT_FEATURES.n_fft // 2}.get(model.config.kind,
                                                                                          DEFAULT_FEATURES.n_mels)
    T = 256
    maps = conv_time_maps(model, torch.randn(1, n_bins, T))
    assert maps and all(m is not None for m, _ in maps.values()), maps
    for layer, (m, out) in maps.items():
        assert abs(out.shape[m.axis] - T / m.stride) <= 2, (layer, m, out.shape)
        assert m.size >= 1
