"""Assigns whole near-duplicate groups to splits, stratified by class.

Hash-bucketing each example (TFX's default) leaks near-duplicates across
splits and leaves small splits short of the rare class. Here a group is the
unit: groups are shuffled deterministically (by a keyed hash of the group id,
so adding images does not reshuffle existing ones), then each class's groups go,
one at a time, to the split that is furthest below its share of that class.
"""

import collections
import hashlib
from typing import Dict, List, Mapping, Sequence, Tuple


def assign_groups_to_splits(items: Sequence[Tuple[str, str]],
                            ratios: Mapping[str, int],
                            seed: int) -> Dict[str, str]:
  """Maps each group id to a split name.

  Args:
    items: (group_id, label) per example.
    ratios: split name -> relative size (e.g. train 70, eval 15, test 15).
    seed: changes the shuffle, and so which groups land where.
  """
  if not ratios or any(r <= 0 for r in ratios.values()):
    raise ValueError(f'Split sizes must be positive, got {dict(ratios)}')
  members = collections.defaultdict(list)
  for group_id, label in items:
    members[group_id].append(label)
  total = sum(ratios.values())
  shares = {name: size / total for name, size in ratios.items()}

  by_class: Dict[str, List[str]] = collections.defaultdict(list)
  for group_id, labels in members.items():
    by_class[majority(labels)].append(group_id)

  assignment: Dict[str, str] = {}
  for label in sorted(by_class):
    filled = {name: 0 for name in ratios}
    for group_id in sorted(by_class[label], key=lambda g: _shuffle_key(g, seed)):
      size = len(members[group_id])
      after = sum(filled.values()) + size
      split = max(ratios, key=lambda s: (shares[s] * after - filled[s], shares[s]))
      assignment[group_id] = split
      filled[split] += size
  return assignment


def majority(labels: Sequence[str]) -> str:
  """The most frequent label; ties go to the first in sorted order."""
  counts = collections.Counter(labels)
  return min(counts, key=lambda label: (-counts[label], label))


def _shuffle_key(group_id: str, seed: int) -> str:
  return hashlib.sha256(f'{seed}:{group_id}'.encode()).hexdigest()
