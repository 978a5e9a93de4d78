"""A bounded cache of a pure function's results, by a digest of the function's inputs.

A segment's fits at successive cut-offs read the same rows, each a few weeks more: the pieces of
work that depend on a fixed block of rows alone (the LASSO's design, its moments) are computed
once and found again by their content, never by position or identity, so a changed row is a miss.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import numpy as np

Value = TypeVar("Value")


class ContentCache(Generic[Value]):
    """Results by the digest of their inputs, the least recently used dropped beyond
    `max_bytes` (each result's size as `size` counts it; the latest is always kept)."""

    def __init__(self, max_bytes: int, size: Callable[[Value], int]) -> None:
        self.max_bytes = max_bytes
        self.size = size
        self.kept: OrderedDict[bytes, Value] = OrderedDict()
        self.bytes = 0
        self.hits = 0

    def get(self, key: bytes, compute: Callable[[], Value]) -> Value:
        """The result remembered for `key`, else `compute()`'s, remembered."""
        if key in self.kept:
            self.kept.move_to_end(key)
            self.hits += 1
            return self.kept[key]
        found = compute()
        self.kept[key] = found
        self.bytes += self.size(found)
        while self.bytes > self.max_bytes and len(self.kept) > 1:
            self.bytes -= self.size(self.kept.popitem(last=False)[1])
        return found


def digest(arrays: Iterable[np.ndarray]) -> bytes:
    """sha256 of the arrays' dtypes, shapes and bytes, in order (the CPU's SHA instructions:
    3 x blake2b's speed here). Arrays of numbers, booleans or dates: an object array's bytes
    are pointers, not values."""
    h = hashlib.sha256()
    for array in arrays:
        if array.dtype.hasobject:
            raise TypeError("digest reads values' bytes: hash objects first")
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
    return h.digest()
