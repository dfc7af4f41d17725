"""The world's tables: timed events, tracks, and their CSR indexes by node.

Every table is numpy arrays; a :class:`Csr` answers "the events of node k up to time t"
with two binary searches, which is what paging a follower list needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Events:
    """A table of timed events ``src -> dst`` sorted by ``t_us`` (distinct times)."""

    src: I64
    dst: I64
    t_us: I64

    def __len__(self) -> int:
        return int(self.t_us.size)

    def visible(self, now_us: int) -> Events:
        """Events that happened at or before ``now_us``."""
        k = int(np.searchsorted(self.t_us, now_us, side="right"))
        return Events(self.src[:k], self.dst[:k], self.t_us[:k])


@dataclass(frozen=True)
class Tracks:
    """All tracks, index ``id - 1``; private tracks have no likes, reposts or plays."""

    id: I64
    user_id: I64
    created_s: I64
    public: B
    quality: F64


@dataclass(frozen=True)
class Csr:
    """Events grouped by a key (0-based), time-ascending inside each group."""

    ptr: I64
    other: I64
    t_us: I64

    @staticmethod
    def build(key: I64, other: I64, t_us: I64, n: int) -> Csr:
        """Group ``(key, other, t_us)`` rows by ``key`` in ``[0, n)``."""
        order = np.lexsort((t_us, key))
        counts = np.bincount(key, minlength=n)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return Csr(ptr, other[order].astype(np.int64), t_us[order].astype(np.int64))

    def count(self, k: int, now_us: int) -> int:
        """Events of group ``k`` at or before ``now_us``."""
        lo, hi = int(self.ptr[k]), int(self.ptr[k + 1])
        if lo == hi:
            return 0
        # fast paths (request handlers call this a lot): all or nothing visible yet
        if self.t_us[hi - 1] <= now_us:
            return hi - lo
        if self.t_us[lo] > now_us:
            return 0
        return int(self.t_us[lo:hi].searchsorted(now_us, side="right"))

    def counts(self, now_us: int) -> I64:
        """Visible events per group at ``now_us`` (vectorised)."""
        n = self.ptr.size - 1
        vis = self.t_us <= now_us
        key = np.repeat(np.arange(n), np.diff(self.ptr))
        return np.bincount(key[vis], minlength=n).astype(np.int64)


def gather(ptr: I64, data: I64, nodes: I64) -> tuple[I64, I64]:
    """``data`` of all groups in ``nodes`` concatenated, and the position in ``nodes``."""
    lo = ptr[nodes]
    lens = ptr[nodes + 1] - lo
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    owner = np.repeat(np.arange(nodes.size), lens)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    idx = np.arange(total) + starts
    return data[idx], owner


def distinct_times(t_us: I64) -> tuple[I64, I64]:
    """Sort order and the times nudged by whole µs so that no two are equal."""
    order = np.argsort(t_us, kind="stable")
    t = t_us[order]
    ramp = np.arange(t.size, dtype=np.int64)
    return order, np.maximum.accumulate(t - ramp) + ramp
