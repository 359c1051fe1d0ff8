"""The IR's building blocks: the frozen base model, source locations, (T, H, W) triples and the
pooling record. Below both `ir` (which composes a model of them) and `ops` (whose records use
them), so that ir.py can hold the op records without an import circle."""

from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .diagnostics import Span

Dims3 = tuple[int, int, int]
PoolMode = Literal["conv", "avg", "max"]


def default_kernel(stride: Dims3) -> Dims3:
    """SlowFast's pooling kernel for a stride: s + 1 where s > 1, else s. The one home of the
    rule: Q and K/V pools without a written kernel, and the residual's skip max-pool."""
    k = tuple(s + 1 if s > 1 else s for s in stride)
    return (k[0], k[1], k[2])


def spatial(dims: tuple[int, ...], video: bool) -> tuple[int, ...]:
    """A (T, H, W) grid, kernel or stride as the model's convolutions see it and as the spec writes
    it: all three for video, (H, W) for images (whose T is always 1). The one home of that rule."""
    return tuple(dims) if video else tuple(dims[1:])


def with_t(size: tuple[int, ...], video: bool) -> tuple[int, ...]:
    """The inverse: (C, T, H, W) from a video size, (C, 1, H, W) from an image's (C, H, W)."""
    return tuple(size) if video else (size[0], 1, *size[-2:])


class Node(BaseModel):
    """Base of every IR model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Loc(Node):
    """Where in the spec a value was set (file, line, column); carried into fx node metadata."""

    file: str
    line: int
    column: int
    text: str = ""
    end_line: int = 0  # 0: the end is not known (a point)
    end_column: int = 0

    def span(self) -> Span:
        """The located region, for diagnostics (a point is one character wide)."""
        if self.end_line:
            return Span(self.file, self.line, self.column, self.end_line, self.end_column)
        return Span(self.file, self.line, self.column, self.line, self.column + 1)


class Pool(Node):
    """One pooling of Q, K, V or the residual; absent when kernel and stride are all 1."""

    mode: PoolMode
    kernel: Dims3
    stride: Dims3
    padding: Dims3

    @property
    def exists(self) -> bool:
        return not (prod(self.kernel) == 1 and prod(self.stride) == 1)
