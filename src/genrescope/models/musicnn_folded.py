"""musicnn as it is exported for inference: constants folded into the weights, dead filters gone.

:class:`FoldedMusicnn` computes what :class:`~genrescope.models.musicnn.Musicnn` computes in
eval mode (the same numbers to float32 rounding; ``tests/test_musicnn.py`` holds the ONNX
export to the PyTorch module), with less work for a runtime:

* **signs in the weights.** A front-end channel whose batch-norm scale is negative takes the
  min over mel instead of the max (see :class:`~genrescope.models.musicnn._FrontendBranch`);
  that flip, ``-max(-c)``, is folded into the convolution's weights and bias, so no
  element-wise multiply runs on the large (B, filters, T, mel) convolution output. What is
  left after the max over mel (the flip back, ReLU, the batch norm's scale and shift) runs on
  the small (B, filters, T) pooled tensor.
* **dead filters dropped.** Many front-end filters of the shipped taggers learnt weights of
  about 1e-30 (musicnn-msd: 181 of its 204 first timbral filters): their output is their bias
  at every position, so their pooled, batch-normed channel is a constant. Those filters are
  not convolved; their constant channels are put back in place after the live ones (one
  Gather). A filter is dead when the most its weights can move its batch-normed output,
  ``sum |w| * |bn scale| * MAX_INPUT``, is below :data:`DEAD_TOLERANCE`.

The mid-end and back end are the tagger's own modules, unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genrescope.models.musicnn import Musicnn, _as_tf_image

#: A bound on |input| of the front-end convolutions (log-mel after the input batch norm; the
#: shipped taggers see at most about 2 on real music).
MAX_INPUT = 20.0
#: Largest change of a batch-normed front-end output that counts as none (float32 rounding of
#: outputs of order 1 is about 1e-7).
DEAD_TOLERANCE = 1e-6


class FoldedMusicnn(nn.Module):
    """A :class:`Musicnn` (its eval-mode numbers) with folded signs and without dead filters.

    ``forward(x)`` takes (B, n_mels, T) log-mel patches and returns ``(probabilities (B, n_classes),
    embeddings (B, backend_units))``, like ``Musicnn(x, return_embeddings=True)``.
    """

    def __init__(self, model: Musicnn):
        super().__init__()
        self.input_bn, self.midend = model.input_bn, model.midend
        self.pool_bn, self.dense, self.dense_bn, self.classifier = (model.pool_bn, model.dense, model.dense_bn,
                                                                    model.classifier)
        self.pads: list[tuple[int, int]] = []
        self.live_filters: list[int] = []
        gather, constants, n_live = [], [], 0
        branches = [*model.timbral, *model.temporal]
        folded = [self._folded(b) for b in branches]
        # dead: the most its weights can move the batch-normed output is below DEAD_TOLERANCE
        lives = [w.abs().flatten(1).sum(1) * scale.abs() * MAX_INPUT >= DEAD_TOLERANCE for w, _, _, scale, _ in folded]
        n_live_total = sum(int(live.sum()) for live in lives)
        for i, (branch, (w, b, sign, scale, shift), live) in enumerate(zip(branches, folded, lives)):
            for name, t in (("weight", w[live]), ("bias", b[live]), ("sign", sign[live][:, None]),
                            ("scale", scale[live][:, None]), ("shift", shift[live][:, None])):
                self.register_buffer(f"{name}{i}", t.contiguous())
            constants.append((scale * F.relu(branch.conv.bias.detach()) + shift)[~live])
            for j in range(len(live)):
                if live[j]:
                    gather.append(n_live)
                    n_live += 1
                else:
                    gather.append(n_live_total + len(gather) - n_live)
            self.pads.append(branch.time_pad)
            self.live_filters.append(int(live.sum()))
        self.register_buffer("constants", torch.cat(constants)[:, None])  # (dead channels, 1)
        self.register_buffer("gather", torch.tensor(gather))  # front channel -> live first, then constants
        self.eval()

    @staticmethod
    def _folded(branch) -> tuple[torch.Tensor, ...]:
        """(conv weight and bias with the sign folded in, sign, bn scale, bn shift) of one branch."""
        bn = branch.bn
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        sign = torch.where(scale < 0, -1.0, 1.0)
        w = branch.conv.weight.detach() * sign[:, None, None, None]
        b = branch.conv.bias.detach() * sign
        return w, b, sign, scale, (bn.bias - bn.running_mean * scale).detach()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_bn(_as_tf_image(x))  # (B, 1, T, n_mels)
        live = []
        for i, pad in enumerate(self.pads):
            w, b = getattr(self, f"weight{i}"), getattr(self, f"bias{i}")
            if w.shape[0] == 0:
                continue
            pooled = F.conv2d(F.pad(x, (0, 0, *pad)), w, b).amax(dim=3)  # (B, live filters, T), sign folded in
            live.append(F.relu(pooled * getattr(self, f"sign{i}")) * getattr(self, f"scale{i}")
                        + getattr(self, f"shift{i}"))
        batch, frames = x.shape[0], x.shape[2]
        dead = self.constants[None].expand(batch, -1, frames)  # (B, dead channels, T)
        front = torch.cat([*live, dead], dim=1)[:, self.gather]  # (B, 561, T) in the tagger's channel order
        mid1 = self.midend[0](front)
        mid2 = self.midend[1](mid1) + mid1
        mid3 = self.midend[2](mid2) + mid2
        feats = torch.cat([front, mid1, mid2, mid3], dim=1)  # (B, 753, T)
        pooled = torch.stack([feats.amax(dim=2), feats.mean(dim=2)], dim=2).flatten(1)  # (B, 1506)
        emb = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return torch.sigmoid(self.classifier(emb)), emb


__all__ = ["FoldedMusicnn", "DEAD_TOLERANCE", "MAX_INPUT"]
