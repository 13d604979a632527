"""Assigns whole groups (near-duplicates, a patient's images) to splits, stratified.

Hash-bucketing each example (TFX's default) leaks near-duplicates across
splits and leaves small splits short of the rare class. Here a group is the
unit: groups are shuffled deterministically (by a keyed hash of the group id,
so adding images does not reshuffle existing ones), then each stratum's groups
go, one at a time, to the split that is furthest below its share of that
stratum. The pipeline's strata are (site, class): every site's every class is
spread over the splits, so a test split holds each site's share of each class.
"""

import collections
import hashlib
from typing import Dict, Hashable, List, Mapping, Sequence, Tuple


def assign_groups_to_splits(items: Sequence[Tuple[str, Hashable]],
                            ratios: Mapping[str, int],
                            seed: int) -> Dict[str, str]:
  """Maps each group id to a split name.

  Args:
    items: (group_id, stratum) per example: the stratum is a class, or a
      (site, class) pair; a group counts in its majority stratum.
    ratios: split name -> relative size (e.g. train 70, eval 15, test 15).
    seed: changes the shuffle, and so which groups land where.
  """
  if not ratios or any(r <= 0 for r in ratios.values()):
    raise ValueError(f'Split sizes must be positive, got {dict(ratios)}')
  members = collections.defaultdict(list)
  for group_id, stratum in items:
    members[group_id].append(stratum)
  total = sum(ratios.values())
  shares = {name: size / total for name, size in ratios.items()}

  by_stratum: Dict[Hashable, List[str]] = collections.defaultdict(list)
  for group_id, strata in members.items():
    by_stratum[majority(strata)].append(group_id)

  assignment: Dict[str, str] = {}
  for stratum in sorted(by_stratum):
    filled = {name: 0 for name in ratios}
    for group_id in sorted(by_stratum[stratum], key=lambda g: _shuffle_key(g, seed)):
      size = len(members[group_id])
      after = sum(filled.values()) + size
      split = max(ratios, key=lambda s: (shares[s] * after - filled[s], shares[s]))
      assignment[group_id] = split
      filled[split] += size
  return assignment


def majority(labels: Sequence[Hashable]) -> Hashable:
  """The most frequent label; ties go to the first in sorted order."""
  counts = collections.Counter(labels)
  return min(counts, key=lambda label: (-counts[label], label))


def _shuffle_key(group_id: str, seed: int) -> str:
  return hashlib.sha256(f'{seed}:{group_id}'.encode()).hexdigest()
