"""Assigns whole groups (near-duplicates, a patient's images) to splits, stratified.

Hash-bucketing each example (TFX's default) leaks near-duplicates across
splits and leaves small splits short of the rare class. Here a group is the
unit: within each stratum, groups are taken in the order of a keyed hash of
their id, and each goes to the split that is furthest below its share of that
stratum. The pipeline's strata are (site, class): every site's every class is
spread over the splits, so a test split holds each site's share of each class.

Groups whose split is already decided (`fixed`: their images were in a split
of the served model's data, see dataset/split_ledger.py) keep it, and count
towards their stratum's shares, so new groups fill what the old ones left.
Without `fixed`, the order alone decides, and one new group can change the
decision for every group after it: stability over time comes from `fixed`.
"""

import collections
import hashlib
from typing import Dict, Hashable, List, Mapping, Sequence, Tuple


def assign_groups_to_splits(items: Sequence[Tuple[str, Hashable]],
                            ratios: Mapping[str, int],
                            seed: int,
                            fixed: Mapping[str, str] = {}) -> Dict[str, str]:
  """Maps each group id to a split name.

  Args:
    items: (group_id, stratum) per example: the stratum is a class, or a
      (site, class) pair; a group counts in its majority stratum.
    ratios: split name -> relative size (e.g. train 70, eval 15, test 15).
    seed: changes the shuffle, and so which new groups land where.
    fixed: group id -> the split it must keep; each must be one of `ratios`.
  """
  if not ratios or any(r <= 0 for r in ratios.values()):
    raise ValueError(f'Split sizes must be positive, got {dict(ratios)}')
  unknown = sorted({split for split in fixed.values() if split not in ratios})
  if unknown:
    raise ValueError(f'Groups are fixed to splits {unknown}, which are not among '
                     f'the splits {sorted(ratios)}')
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
    # Fixed groups first, so that the new ones fill what they left.
    for group_id in sorted(by_stratum[stratum],
                           key=lambda g: (g not in fixed, _shuffle_key(g, seed))):
      size = len(members[group_id])
      after = sum(filled.values()) + size
      split = fixed[group_id] if group_id in fixed else max(
          ratios, key=lambda s: (shares[s] * after - filled[s], shares[s]))
      assignment[group_id] = split
      filled[split] += size
  return assignment


def majority(labels: Sequence[Hashable]) -> Hashable:
  """The most frequent label; ties go to the first in sorted order."""
  counts = collections.Counter(labels)
  return min(counts, key=lambda label: (-counts[label], label))


def _shuffle_key(group_id: str, seed: int) -> str:
  return hashlib.sha256(f'{seed}:{group_id}'.encode()).hexdigest()
