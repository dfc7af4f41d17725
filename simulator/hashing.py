"""Counter-based hashing: the same 64-bit mix for Python ints and numpy arrays.

Everything procedural in the simulator (users outside the social core, fault draws,
client ids) is a pure function of ``(seed, stream, key)`` through :func:`mix`, so it
needs no memory and is identical whether computed one id at a time in a request
handler (:func:`uniform`) or for a whole id range at once (:func:`uniform_array`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def mix(x: int) -> int:
    """splitmix64's finaliser of ``x`` (a bijection on 64-bit integers)."""
    z = (x + _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


_HEADS: dict[tuple[int, int], int] = {}


def _head(seed: int, stream: int) -> int:
    h = _HEADS.get((seed, stream))
    if h is None:
        h = _HEADS[(seed, stream)] = mix(mix(seed & _M64) ^ (stream & _M64))
    return h


def key(seed: int, stream: int, item: int) -> int:
    """A 64-bit hash of ``(seed, stream, item)``."""
    # the (seed, stream) prefix is memoised: request handlers call this a lot
    z = ((_HEADS.get((seed, stream)) or _head(seed, stream)) ^ (item & _M64)) + _GOLDEN
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


def uniform(seed: int, stream: int, item: int) -> float:
    """A uniform draw in ``[0, 1)`` for ``(seed, stream, item)``."""
    return (key(seed, stream, item) >> 11) * (1.0 / (1 << 53))


def _mix_array(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = x + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def key_array(seed: int, stream: int, items: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """:func:`key` over an array of items (wrapping uint64 arithmetic, no warnings)."""
    head = _head(seed, stream)
    arr = np.asarray(items).astype(np.uint64)
    with np.errstate(over="ignore"):
        return _mix_array(np.uint64(head) ^ arr)


def uniform_array(seed: int, stream: int, items: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:func:`uniform` over an array of items."""
    k = key_array(seed, stream, items)
    return (k >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
