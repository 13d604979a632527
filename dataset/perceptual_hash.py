"""Near-duplicate grouping by difference hash, in near-linear time.

Ultrasound exports hold the same scan several times: re-saved, re-cropped by a
few pixels, with calipers and text burned in, or as the next frame of the same
sweep. Such copies must land in the same split, or the test set leaks. A 64-bit
difference hash (dHash) is stable under those edits: on BUSI, copies differ in
at most ~10 bits while unrelated scans differ in 20 or more.

Comparing every pair is quadratic. Multi-index hashing avoids it: cut the hash
into 4 bands of 16 bits; two hashes within `t` bits agree within `t // 4` bits
on at least one band (pigeonhole). Each hash probes, per band, the few values
within that radius, so the work per image is constant and candidates are only
the hashes found in those buckets (16-bit keys keep buckets small into the
tens of thousands of images). Exact duplicates (same content hash) are grouped
directly.
"""

import itertools
from typing import Dict, Hashable, Iterable, List, Sequence, Set

import numpy as np
from PIL import Image

HASH_BITS = 64
_HASH_SIDE = 8


def difference_hash(image: Image.Image) -> int:
  """64-bit dHash: whether each pixel is brighter than its right neighbour."""
  grey = image.convert('L').resize((_HASH_SIDE + 1, _HASH_SIDE),
                                   Image.Resampling.LANCZOS)
  pixels = np.asarray(grey, dtype=np.int16)
  bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
  return int(''.join('1' if b else '0' for b in bits), 2)


class UnionFind:
  """Disjoint sets of 0..size-1; each set's root is its smallest member."""

  def __init__(self, size: int):
    self._parent = list(range(size))

  def find(self, i: int) -> int:
    while self._parent[i] != i:
      self._parent[i] = self._parent[self._parent[i]]
      i = self._parent[i]
    return i

  def union(self, i: int, j: int) -> None:
    root_i, root_j = self.find(i), self.find(j)
    if root_i != root_j:
      self._parent[max(root_i, root_j)] = min(root_i, root_j)

  def union_equal(self, keys: Iterable[Hashable]) -> Dict[Hashable, int]:
    """Joins the members whose keys are equal; returns each key's first member."""
    first: Dict[Hashable, int] = {}
    for i, key in enumerate(keys):
      self.union(first.setdefault(key, i), i)
    return first


def group_near_duplicates(content_hashes: Sequence[str],
                          perceptual_hashes: Sequence[int],
                          max_bits: int) -> List[int]:
  """Returns, per item, the index of its group's first member.

  Items are in the same group when their content hashes are equal or their
  perceptual hashes are within `max_bits` bits, transitively.
  """
  if len(content_hashes) != len(perceptual_hashes):
    raise ValueError('content_hashes and perceptual_hashes differ in length')
  if not 0 <= max_bits < HASH_BITS // 2:
    raise ValueError(f'max_bits must be in [0, {HASH_BITS // 2}), got {max_bits}')
  groups = UnionFind(len(content_hashes))
  groups.union_equal(content_hashes)
  representatives = groups.union_equal(perceptual_hashes)
  index = _BandIndex()
  radius = max_bits // _BANDS
  for value, i in representatives.items():
    for other in index.candidates(value, radius):
      if (value ^ other).bit_count() <= max_bits:
        groups.union(i, representatives[other])
    index.add(value)
  return [groups.find(i) for i in range(len(content_hashes))]


_BANDS = 4
_BAND_BITS = HASH_BITS // _BANDS
_BAND_MASK = (1 << _BAND_BITS) - 1


class _BandIndex:
  """Hashes by the value of each 16-bit band, for multi-index look-ups."""

  def __init__(self):
    self._tables: List[Dict[int, List[int]]] = [{} for _ in range(_BANDS)]

  def add(self, value: int) -> None:
    for band, table in enumerate(self._tables):
      table.setdefault(_band(value, band), []).append(value)

  def candidates(self, value: int, radius: int) -> Set[int]:
    found: Set[int] = set()
    for band, table in enumerate(self._tables):
      for probe in _within(_band(value, band), radius):
        found.update(table.get(probe, ()))
    return found


def _band(value: int, band: int) -> int:
  return (value >> (band * _BAND_BITS)) & _BAND_MASK


def _within(value: int, radius: int) -> Iterable[int]:
  """Every band value at most `radius` bits away from `value`."""
  for flips in range(radius + 1):
    for bits in itertools.combinations(range(_BAND_BITS), flips):
      yield value ^ sum(1 << b for b in bits)
