"""Neural Function Modules (thesis ch. 10; Lamb et al., 2021).

Before a layer's output moves on, an NFM site lets every position of that layer (the query)
attend sparsely over a memory of previously computed layers: the earlier layers of this
pass, the current layer itself and, from the second pass on, every layer of the earlier
passes (top-down information). The memory is rescaled to the query's resolution
(section 10.3.2.2), a zero "null" entry is prepended (section 10.3.2.1, "default
computation"), and the read is added to the residual through a learned gamma that starts at
0, so a fresh network computes exactly what it would without NFM.

- :class:`NFMAttention`: one site (Algorithm 2, line 9-10 and the attention of 10.3.2.1).
- :class:`NFMStack`: K passes over a list of blocks with a site after each (Algorithm 2).
- :func:`rescale`: the automatic type conversion of a memory layer to the query's size.

Tensors are (B, C, H, W); vectors (B, C) are treated as 1x1 maps, so the same code wraps
stacks of linear layers.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rimrl.nn.attention import topk_mask


def as_map(x: torch.Tensor) -> torch.Tensor:
    """(B, C) -> (B, C, 1, 1); (B, C, H, W) unchanged."""
    return x[:, :, None, None] if x.dim() == 2 else x


def rescale(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A memory layer (B, C, H, W) at the query's ``size`` as (B, E, C, h, w): E elements
    (keys) per query position.

    Same size: one element. A smaller source: nearest upsampling, one element. A larger
    source: space-to-depth with factor ``r = ceil(H / h)`` (zero padding up to ``r * h``
    when the sizes do not divide), so each of the ``r*r`` finer positions under a coarse one
    stays its own element instead of being averaged or dropped.
    """
    b, c, height, width = x.shape
    h, w = size
    if (height, width) == (h, w):
        return x[:, None]
    if height <= h and width <= w:
        return F.interpolate(x, size=size, mode="nearest")[:, None]
    r = max(math.ceil(height / h), math.ceil(width / w))
    if (r * h, r * w) != (height, width):
        x = F.pad(x, (0, r * w - width, 0, r * h - height))  # F.pad copies even for 0
    # pixel_unshuffle orders channels as (C, r, r): move the r*r offsets to the element axis
    x = F.pixel_unshuffle(x, r).view(b, c, r * r, h, w)
    return x.transpose(1, 2)


class NFMAttention(nn.Module):
    """One NFM site: multi-head top-k attention from a layer over a memory of layers.

    For each position of the query layer ``h``: ``q = W_q h``; the memory holds the keys and
    values of earlier layers, projected by maps that belong to the layer that produced them
    (section 10.3.2.1: linear maps "separate per module") at that layer's resolution, and are
    rescaled here to ``h``'s; a zero key/value is the null entry. Per head only the ``top_k``
    largest scores are kept before the softmax (Ke et al., 2018). The read goes through
    ``Linear -> (BatchNorm) -> ReLU -> Linear`` and is added as ``h + gamma * out`` with
    ``gamma`` initialised to 0 (section 10.3.2.1).

    Args:
        query_channels: channels of the layer this site sits on.
        key_size: total key size over heads (per head: ``key_size // heads``).
        value_size: total value size over heads.
        heads: attention heads.
        top_k: scores kept per head and query (the thesis uses 4; larger keeps all).
        batch_norm: batch-norm before the ReLU of the output MLP.
    """

    def __init__(self, query_channels: int, key_size: int = 32, value_size: int = 32,
                 heads: int = 4, top_k: int = 4, batch_norm: bool = False):
        super().__init__()
        if key_size % heads or value_size % heads:
            raise ValueError(f"key_size ({key_size}) and value_size ({value_size}) must be "
                             f"multiples of heads ({heads})")
        self.heads, self.top_k = heads, top_k
        self.key_size, self.value_size = key_size, value_size
        self.query = nn.Conv2d(query_channels, key_size, 1)
        # h1 = relu(A W_o1) W_o2 (section 10.3.2.1); the hidden width is the value size, so a
        # wide layer pays one projection back to its width, not two
        self.out = nn.Sequential(
            nn.Conv2d(value_size, value_size, 1),
            nn.BatchNorm2d(value_size) if batch_norm else nn.Identity(),
            nn.ReLU(),
            nn.Conv2d(value_size, query_channels, 1),
        )
        self.gamma = nn.Parameter(torch.zeros(()))
        self.last_weights: torch.Tensor | None = None  # (B, 1 + E, heads, H, W); 0 = null

    def forward(self, h: torch.Tensor, memory: Sequence[torch.Tensor]) -> torch.Tensor:
        """``h`` (B, C, H, W) or (B, C); ``memory``: projected layers (B, key_size +
        value_size, H', W') (or (B, key_size + value_size)) of any size, keys first. Returns
        the same shape as ``h``."""
        size = tuple(as_map(h).shape[2:])
        return self.attend(h, [rescale(as_map(m), size) for m in memory])

    def attend(self, h: torch.Tensor, elements: Sequence[torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` with the memory already rescaled: each of ``elements`` is
        (B, E_j, key_size + value_size, H, W) at ``h``'s resolution."""
        x = as_map(h)
        b, _, height, width = x.shape
        heads, d, dv = self.heads, self.key_size // self.heads, self.value_size // self.heads
        q = self.query(x).view(b, 1, heads, d, height, width)
        # the conv layout (B, E, heads, d, H, W) throughout, no per-position permutes; scores
        # per memory layer and only they are concatenated (keys and values are 32x larger)
        values, scores = [], [x.new_zeros(b, 1, heads, height, width)]  # the null entry
        for element in elements:
            key, value = element.split([self.key_size, self.value_size], dim=2)
            scores.append((q * key.reshape(b, -1, heads, d, height, width)).sum(3))
            values.append(value.reshape(b, -1, heads, dv, height, width))
        scores = torch.cat(scores, 1) / math.sqrt(d)  # (B, 1 + E, heads, H, W)
        if self.top_k < scores.shape[1]:
            scores = scores.masked_fill(~topk_mask(scores, self.top_k, dim=1), float("-inf"))
        weights = torch.softmax(scores, dim=1)
        self.last_weights = weights.detach()
        read, start = 0, 1  # the null value is zero: it adds nothing
        for value in values:
            w = weights[:, start:start + value.shape[1], :, None]
            read = read + (w * value).sum(1)
            start += value.shape[1]
        out = x + self.gamma * self.out(read.reshape(b, self.value_size, height, width))
        return out.view_as(h)


class NFMStack(nn.Module):
    """Algorithm 2: ``passes`` passes over ``blocks``, an :class:`NFMAttention` site after
    each block, all layers remembered across passes.

    Pass ``k`` starts again from the input; after block ``i`` the site attends over the
    outputs of blocks ``0..i`` of this pass (block ``i``'s own output included) and of every
    block of the earlier passes. The memory holds block outputs as they leave their block
    (before their own site's read; the read reaches later layers through the residual
    stream). Each is projected to keys and values once, by maps of that block (bias-free,
    so a zero layer gives the null key), and rescaled once per target size. Blocks, maps and
    sites are shared between passes: a second pass costs compute, not parameters, and with
    ``gamma = 0`` every pass computes the plain stack, so training starts from the network
    without NFM.

    Args:
        blocks: the stack's modules, applied in order.
        channels: output channels (or width) of each block.
        passes: K, the number of passes (the thesis uses 2).
        key_size, value_size, heads, top_k, batch_norm: of each site (:class:`NFMAttention`).
        sites: indexes of the blocks followed by a site (default: every block). A block
            without a site still enters the memory; only its own read is skipped. Each
            site's cost grows with the memory read at its resolution, so skipping the
            finest block's site saves the most time (benchmarks/RESULTS.md, "nfm-cost").
    """

    def __init__(self, blocks: Sequence[nn.Module], channels: Sequence[int], passes: int = 2,
                 key_size: int = 32, value_size: int = 32, heads: int = 4, top_k: int = 4,
                 batch_norm: bool = False, sites: Optional[Sequence[int]] = None):
        super().__init__()
        if len(blocks) != len(channels):
            raise ValueError("one channel count per block is needed")
        if passes < 1:
            raise ValueError(f"passes must be at least 1, got {passes}")
        sites = list(range(len(blocks))) if sites is None else list(sites)
        if not sites or len(set(sites)) != len(sites) or not all(
                isinstance(i, int) and 0 <= i < len(blocks) for i in sites):
            raise ValueError(f"sites must be distinct block indexes in 0..{len(blocks) - 1}, "
                             f"at least one; got {sites}")
        self.blocks = nn.ModuleList(blocks)
        self.passes = passes
        self.projections = nn.ModuleList(nn.Conv2d(c, key_size + value_size, 1, bias=False)
                                         for c in channels)
        # keyed by block index: the same parameter names as a list of every site
        self.sites = nn.ModuleDict({
            str(i): NFMAttention(channels[i], key_size, value_size, heads, top_k, batch_norm)
            for i in sorted(sites)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory: list[torch.Tensor] = []  # projected block outputs, all passes so far
        # each layer rescaled once per target size: later passes reuse the earlier ones' work
        rescaled: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}
        for _ in range(self.passes):
            h = x
            for i, (block, project) in enumerate(zip(self.blocks, self.projections)):
                h = block(h)
                memory.append(project(as_map(h)))
                site = self.sites[str(i)] if str(i) in self.sites else None
                if site is None:
                    continue
                size = tuple(as_map(h).shape[2:])
                for j, m in enumerate(memory):
                    if (j, size) not in rescaled:
                        rescaled[j, size] = rescale(as_map(m), size)
                h = site.attend(h, [rescaled[j, size] for j in range(len(memory))])
        return h
