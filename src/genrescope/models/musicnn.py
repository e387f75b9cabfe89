"""The pretrained musicnn taggers (Pons & Serra, 2019) as PyTorch modules.

A port of ``musicnn==0.1.0`` (ISC licence, https://github.com/jordipons/musicnn),
whose TensorFlow 1 checkpoints are converted by ``tools/convert_musicnn.py`` into
``genrescope/pretrained/<name>/``. The layers reproduce the TF graph in inference
mode exactly: TF's "same" padding (one more zero after than before for even kernels),
``tf.layers.batch_normalization``'s epsilon of 1e-3 with its moving statistics, the
ReLU-then-batch-norm order, and the (time, frequency, channel) order of TF's flatten.
Dropout is absent (it is the identity at inference).

Both networks take a batch of log-mel patches ``(B, n_mels, T)`` like every genrescope
model (96 mel bands by 187 frames of 16 ms, :data:`genrescope.config.MUSICNN_FEATURES`, as
:func:`genrescope.features.windows.slice_windows` cuts them; ``(B, 1, n_mels, T)`` is accepted too)
and return sigmoid tag probabilities ``(B, n_classes)``, plus the embeddings with
``return_embeddings=True``. Inside, a patch becomes ``(B, 1, T, n_mels)``: TF's NHWC input
``(B, T, n_mels, 1)`` in PyTorch's channel-first order, so TF kernels map one to one.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genrescope.config import MUSICNN_FEATURES, FeatureConfig, pretrained_dir
from genrescope.errors import CheckpointError, GenrescopeError
from genrescope.models.layers import GenreModel, ModelConfig, classifier
from genrescope.models.weights_check import check_state_dict

#: ``tf.compat.v1.layers.batch_normalization``'s default epsilon.
TF_BN_EPS = 1e-3



def pretrained_taggers() -> list[str]:
    """Names of the converted taggers shipped in ``genrescope/pretrained/`` (the folders that
    hold ``weights.safetensors``; the shipped-model list itself is the folder, read in one place)."""
    root = pretrained_dir()
    return sorted(p.name for p in root.iterdir() if (p / "weights.safetensors").is_file()) if root.is_dir() else []


def _as_tf_image(x: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, T) or (B, 1, n_mels, T) -> (B, 1, T, n_mels)."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise GenrescopeError(f"musicnn expects log-mel patches (B, n_mels, T), got shape {tuple(x.shape)}")
    return x.transpose(2, 3)


def _tf_same_pad(kernel: int) -> tuple[int, int]:
    """Zeros before and after an axis for TF's stride-1 'same' padding."""
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


class _SignedConv2d(nn.Conv2d):
    """A Conv2d whose output channels may be multiplied by +-1 inside its own forward.

    The front end's inference path flips the channels whose batch norm inverts them (see
    :class:`_FrontendBranch`); doing it here means forward hooks (the filters report) see the
    activations the max over mel really takes, not the pre-flip ones (whose maxima, for an
    inverted channel, sit on the quietest frames of the data).
    """

    def forward(self, x: torch.Tensor, sign: torch.Tensor | None = None) -> torch.Tensor:
        out = super().forward(x)
        return out if sign is None else out * sign  # sign: (1, filters, 1, 1)


class _FrontendBranch(nn.Module):
    """One front-end filter shape: conv over (time, mel), ReLU, batch norm, max over mel.

    Time is padded like TF's 'same' (musicnn pads 3 + 3 by hand for its 7-frame timbral
    kernels, and uses 'same' for the temporal ones: 63 + 64 zeros for 128 frames); the
    mel axis is not padded ('valid' for the timbral kernels, width 1 for the temporal).
    """

    def __init__(self, filters: int, kernel: tuple[int, int]):
        super().__init__()
        self.time_pad = _tf_same_pad(kernel[0])
        self.conv = _SignedConv2d(1, filters, kernel)
        self.bn = nn.BatchNorm2d(filters, eps=TF_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.time_pad))  # (B, 1, T + k_t - 1, n_mels)
        if self.training:
            return self.bn(F.relu(self.conv(x))).amax(dim=3)  # (B, filters, T)
        # Inference: the max over mel commutes with ReLU and with each channel's batch-norm
        # affine map, so ReLU and batch norm run on the pooled (B, filters, T) tensor instead of
        # the 4-D one. A channel whose batch-norm scale is negative needs the min over mel,
        # taken as -max(-c): those channels are multiplied by -1 (exact in float; both runtimes
        # fold the constant into the conv), so one max serves every channel and the graph has no
        # second reduction. Same numbers. The flip happens inside self.conv, so its hooks (the
        # filters report) see the activations the max takes.
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)  # (filters,)
        sign = torch.where(scale < 0, -1.0, 1.0)[None, :, None]  # (1, filters, 1)
        c = self.conv(x, sign[..., None])  # (B, filters, T, n_mels - k_f + 1), flipped where scale < 0
        pooled = c.amax(dim=3) * sign  # max over mel, or min where scale < 0
        return F.batch_norm(F.relu(pooled), self.bn.running_mean, self.bn.running_var, self.bn.weight,
                        self.bn.bias, training=False, eps=self.bn.eps)  # (B, filters, T)


class _MidendLayer(nn.Module):
    """musicnn's mid-end conv: 7 frames over all input channels (a 1-D conv), ReLU, batch norm."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = nn.BatchNorm1d(filters, eps=TF_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))  # (B, filters, T)


class Musicnn(nn.Module):
    """The musicnn tagger: musically motivated front end, dense mid-end, pooled back end.

    Parameters
    ----------
    n_classes : int
        Number of tags (50 for the MSD and MTT models).
    n_mels : int
        Mel bands of the input (96).
    frontend_width : float
        Front-end width factor: ``int(128 w)`` filters per timbral and ``int(32 w)``
        per temporal kernel (1.6 gives 204 and 51).
    midend_filters : int
        Filters of each mid-end layer (64; 512 in musicnn's "big" model).
    backend_units : int
        Units of the penultimate dense layer, the embedding size (200; 500 "big").
    """

    def __init__(self, n_classes: int = 50, n_mels: int = 96, frontend_width: float = 1.6,
                 midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        timbral_filters, temporal_filters = int(frontend_width * 128), int(frontend_width * 32)
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        # timbral kernels span 7 frames and 40 % / 70 % of the mel axis (38 and 67 bands)
        self.timbral = nn.ModuleList(
            [_FrontendBranch(timbral_filters, (7, int(share * n_mels))) for share in (0.4, 0.7)])
        # temporal kernels span 1 band and 128 / 64 / 32 frames
        self.temporal = nn.ModuleList([_FrontendBranch(temporal_filters, (k, 1)) for k in (128, 64, 32)])
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters  # 561
        self.midend = nn.ModuleList([_MidendLayer(frontend_channels, midend_filters),
                                     _MidendLayer(midend_filters, midend_filters),
                                     _MidendLayer(midend_filters, midend_filters)])
        pooled = 2 * (frontend_channels + 3 * midend_filters)  # max and mean of 753 channels: 1506
        self.pool_bn = nn.BatchNorm1d(pooled, eps=TF_BN_EPS)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=TF_BN_EPS)
        self.classifier = nn.Linear(backend_units, n_classes)

    def forward(self, x: torch.Tensor, return_embeddings: bool = False):
        """Tag probabilities of log-mel patches.

        Parameters
        ----------
        x : torch.Tensor
            (B, n_mels, T) log-mel patches; musicnn was trained on T = 187.
        return_embeddings : bool
            Also return musicnn's "penultimate" features (batch-normed dense layer).

        Returns
        -------
        probs : torch.Tensor
            (B, n_classes) sigmoid probabilities.
        embeddings : torch.Tensor, only with ``return_embeddings``
            (B, backend_units).
        """
        x = self.input_bn(_as_tf_image(x))  # (B, 1, T, n_mels)
        front = torch.cat([branch(x) for branch in [*self.timbral, *self.temporal]], dim=1)  # (B, 561, T)
        mid1 = self.midend[0](front)  # (B, 64, T)
        mid2 = self.midend[1](mid1) + mid1  # residual
        mid3 = self.midend[2](mid2) + mid2
        feats = torch.cat([front, mid1, mid2, mid3], dim=1)  # (B, 753, T)
        # TF concatenates max and mean on a last axis and flattens (753, 2): interleaved
        pooled = torch.stack([feats.amax(dim=2), feats.mean(dim=2)], dim=2).flatten(1)  # (B, 1506)
        emb = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))  # (B, backend_units)
        probs = torch.sigmoid(self.classifier(emb))  # (B, n_classes)
        return (probs, emb) if return_embeddings else probs


class MusicnnVGG(nn.Module):
    """musicnn's VGG-like baseline: five 3x3 conv blocks with max pooling, then a dense layer.

    Parameters
    ----------
    n_classes : int
        Number of tags (50).
    n_mels, n_frames : int
        Input patch size (96 x 187); the dense layer fixes it.
    filters : int
        Filters of every conv layer (128).
    """

    #: (kernel, stride) of the max pooling after each conv, over (time, mel)
    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_classes: int = 50, n_mels: int = 96, n_frames: int = 187, filters: int = 128):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(filters, eps=TF_BN_EPS) for _ in range(5)])
        t, f = n_frames, n_mels
        for (kt, kf), (st, sf) in self.POOLS:  # 'valid' pooling: (187, 96) -> (2, 1)
            t, f = (t - kt) // st + 1, (f - kf) // sf + 1
        if t < 1 or f < 1:
            raise GenrescopeError(f"MusicnnVGG: a {n_mels} x {n_frames} patch is too small for five poolings")
        self.n_frames = n_frames
        self.classifier = nn.Linear(t * f * filters, n_classes)

    def forward(self, x: torch.Tensor, return_embeddings: bool = False):
        """Tag probabilities of log-mel patches.

        Parameters
        ----------
        x : torch.Tensor
            (B, n_mels, n_frames) log-mel patches.
        return_embeddings : bool
            Also return the flattened last pooling (musicnn's "pool5" feature).

        Returns
        -------
        probs : torch.Tensor
            (B, n_classes) sigmoid probabilities.
        embeddings : torch.Tensor, only with ``return_embeddings``
            (B, 256) for 96 x 187 patches.
        """
        x = self.input_bn(_as_tf_image(x))  # (B, 1, T, n_mels)
        for conv, bn, (kernel, stride) in zip(self.convs, self.bns, self.POOLS):
            x = F.max_pool2d(bn(F.relu(conv(x))), kernel, stride)  # (B, 128, t, f), finally (B, 128, 2, 1)
        emb = x.permute(0, 2, 3, 1).flatten(1)  # TF flattens (t, f, channel): (B, 256)
        probs = torch.sigmoid(self.classifier(emb))  # (B, n_classes)
        return (probs, emb) if return_embeddings else probs


#: The blocks of :class:`Musicnn`, last first: ``train_blocks=k`` fine-tunes the first k.
MUSICNN_BLOCKS = (("backend", ("pool_bn", "dense", "dense_bn")), ("midend.2", ("midend.2",)),
                  ("midend.1", ("midend.1",)), ("midend.0", ("midend.0",)),
                  ("frontend", ("input_bn", "timbral", "temporal")))


@dataclass(frozen=True)
class FinetuneConfig(ModelConfig):
    """A shipped musicnn tagger with a new classifier head, its last blocks trainable.

    Parameters
    ----------
    backbone : str
        A shipped musicnn model (``musicnn-msd`` or ``musicnn-mtt``) whose weights start
        the backbone.
    train_blocks : int
        How many of musicnn's blocks, counted from the output, are trained with the head
        (see :data:`MUSICNN_BLOCKS`): 0 = head only, 1 = + back end (dense layer),
        2..4 = + mid-end layers, 5 = everything. The others stay frozen.
    hidden : tuple of int
        Hidden layers of the head (empty: linear).
    dropout : float
        Dropout before each head layer.
    backbone_lr_scale : float
        Learning rate of the trained backbone blocks relative to the head's.
    """

    kind: str = "log_mel"
    n_bins: int = MUSICNN_FEATURES.n_mels
    window_s: float | None = MUSICNN_FEATURES.window_s
    backbone: str = "musicnn-msd"
    train_blocks: int = 1
    hidden: tuple[int, ...] = ()
    dropout: float = 0.3
    backbone_lr_scale: float = 0.1

    def validate(self) -> None:
        if self.kind != "log_mel" or self.n_bins != MUSICNN_FEATURES.n_mels:
            raise GenrescopeError(f"FinetuneConfig: musicnn reads {MUSICNN_FEATURES.n_mels}-band log-mel, got "
                                  f"{self.n_bins} {self.kind}")
        if not 0 <= self.train_blocks <= len(MUSICNN_BLOCKS):
            raise GenrescopeError(f"FinetuneConfig: train_blocks must be 0..{len(MUSICNN_BLOCKS)}, "
                                  f"got {self.train_blocks}")
        if not 0 < self.backbone_lr_scale <= 1:
            raise GenrescopeError(f"FinetuneConfig: backbone_lr_scale must be in (0, 1], got {self.backbone_lr_scale}")


class MusicnnFinetune(GenreModel):
    """(B, 96, T) log-mel patches -> musicnn embeddings (200) -> head -> (B, n_classes) logits.

    The backbone starts from the shipped weights of ``config.backbone``; a checkpoint then
    overwrites them with its fine-tuned ones. The backbone always runs in inference mode:
    its batch-norm statistics stay those learnt on the large dataset (a small dataset's
    batches would only make them noisier); the trained blocks learn their weights only.
    """

    Config = FinetuneConfig

    def __init__(self, config: FinetuneConfig):
        super().__init__(config)
        backbone, meta = load_musicnn(config.backbone)
        if not isinstance(backbone, Musicnn):
            raise CheckpointError(f"{config.backbone}: fine-tuning needs a musicnn architecture, got "
                                  f"{meta.get('architecture')!r}")
        self.backbone = backbone
        trained = [m for _, mods in MUSICNN_BLOCKS[:config.train_blocks] for m in mods]
        for name, p in backbone.named_parameters():
            p.requires_grad_(any(name == m or name.startswith(m + ".") for m in trained))
        c = config
        layers: list[nn.Module] = []
        dims = (backbone.dense.out_features, *c.hidden)
        for i, o in zip(dims[:-1], dims[1:]):
            layers += [nn.Dropout(c.dropout), nn.Linear(i, o), nn.ReLU(inplace=True)]
        self.head = nn.Sequential(*layers, classifier(dims[-1], c.n_classes, dropout=c.dropout))

    def train(self, mode: bool = True) -> "MusicnnFinetune":
        super().train(mode)
        self.backbone.eval()  # see the class docstring
        return self

    def param_groups(self, lr: float) -> list[dict]:
        """The optimiser's groups: the head at ``lr``, trained backbone blocks at a fraction of it."""
        trained = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.head.parameters()), "lr": lr}]
        if trained:
            groups.append({"params": trained, "lr": lr * self.config.backbone_lr_scale})
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, emb = self.backbone(x, return_embeddings=True)  # (B, 200)
        return self.head(emb)  # (B, n_classes)


#: For the registry in genrescope.models: classes built from keyword arguments, and their front end.
ARCHITECTURES = {"musicnn": Musicnn, "musicnn_vgg": MusicnnVGG}
#: ... and the config-protocol model that fine-tunes a tagger on new labels.
MODELS = {"musicnn-finetune": (MusicnnFinetune, {})}
FEATURES = {"musicnn": MUSICNN_FEATURES, "musicnn-vgg": MUSICNN_FEATURES, "musicnn-finetune": MUSICNN_FEATURES}


def build_musicnn(config: dict[str, Any]) -> nn.Module:
    """An untrained module from a pretrained model's ``config.json`` contents."""
    arch = config.get("architecture")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown musicnn architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[arch](**config.get("hparams", {}))
    except TypeError as e:
        raise CheckpointError(f"bad hyper-parameters for {arch}: {e}") from e


def resolve_pretrained(name_or_dir: str | Path) -> Path:
    """The folder of a shipped model name (``"musicnn-msd"``, ...) or a given folder."""
    p = Path(name_or_dir)
    shipped = pretrained_taggers()
    if str(name_or_dir) in shipped:
        p = pretrained_dir() / str(name_or_dir)
    if not p.is_dir():
        raise CheckpointError(f"{name_or_dir}: not a pretrained model folder nor one of {shipped}")
    return p


def load_musicnn(name_or_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a converted musicnn model, checking every tensor's name, shape and dtype.

    Parameters
    ----------
    name_or_dir : str or path
        A shipped name (see :func:`pretrained_taggers`) or a folder holding ``config.json``
        and ``weights.safetensors``.

    Returns
    -------
    module : torch.nn.Module
        The network in eval mode.
    config : dict
        ``config.json``: architecture, hparams, labels, features (a
        :class:`~genrescope.config.FeatureConfig` dict), source, licence.

    Raises
    ------
    CheckpointError
        A missing or malformed file, or weights that do not match the architecture
        exactly (missing, unexpected or misshapen tensors).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_pretrained(name_or_dir)
    cfg_path, weights_path = folder / "config.json", folder / "weights.safetensors"
    for path in (cfg_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{path}: missing")
    try:
        config = json.loads(cfg_path.read_text())
        FeatureConfig.from_dict(config["features"])
        labels = config["labels"]
    except (ValueError, KeyError, TypeError, GenrescopeError) as e:
        raise CheckpointError(f"{cfg_path}: malformed ({e!r})") from e
    with warnings.catch_warnings(), torch.device("meta"):  # no memory, whatever size config.json says
        warnings.simplefilter("ignore")  # a fine-tuned model's backbone copies real weights into meta tensors
        expected = build_musicnn(config).state_dict()
    n_out = expected["classifier.weight"].shape[0]
    if len(labels) != n_out:
        raise CheckpointError(f"{cfg_path}: {len(labels)} labels for {n_out} outputs")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights_path}: cannot be read ({e})") from e
    check_state_dict(state, expected, where=str(weights_path))
    model = build_musicnn(config)  # only now: the weights fit what it describes
    model.load_state_dict(state, strict=True)
    return model.eval(), config


__all__ = ["Musicnn", "MusicnnVGG", "MusicnnFinetune", "FinetuneConfig", "MUSICNN_BLOCKS", "ARCHITECTURES",
           "build_musicnn", "load_musicnn", "pretrained_taggers", "resolve_pretrained"]
