"""Which images are ingested, in which near-duplicate group and split.

Pure domain logic over the images' fingerprints: group near-duplicates, apply
the label-conflict policy, assign whole groups to splits. ImageExampleGen runs
it once over all fingerprints; the benches run it to split as the pipeline does.
"""

import dataclasses
from typing import Dict, List, Mapping, Sequence, Tuple

from dataset import data_audit
from dataset import group_split
from dataset import image_files


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  # relpath -> (group id, split) of every image to ingest.
  assignment: Dict[str, Tuple[str, str]]
  # relpath -> class of every readable image, ingested or not.
  labels: Dict[str, str]
  # The exact and near-duplicate groups, as the data audit lists them.
  groups: List[data_audit.DuplicateGroup]
  # The images the label-conflict policy drops, as the audit quarantines them.
  dropped: List[image_files.ExcludedFile]
  # relpath -> its mask files, of every readable image.
  masks: Dict[str, Tuple[str, ...]]

  def splits(self) -> Dict[str, str]:
    """relpath -> split of every image to ingest."""
    return {path: split for path, (_, split) in self.assignment.items()}


def plan_splits(fingerprints: Sequence[image_files.ImageFingerprint],
                ratios: Mapping[str, int], near_duplicate_max_bits: int,
                split_seed: int, label_conflicts: str) -> SplitPlan:
  """Groups near-duplicates, applies the label-conflict policy, assigns splits.

  `ratios` maps split names to relative sizes; `label_conflicts` is one of
  `data_audit.LABEL_CONFLICT_POLICIES` ('drop' removes every member of a group
  filed under several classes; the others keep them, and the audit decides).
  """
  groups = image_files.group_key(fingerprints, near_duplicate_max_bits)
  labels = {f.relpath: f.label for f in fingerprints}
  duplicates = data_audit.duplicate_groups(
      groups, labels, {f.relpath: f.sha256 for f in fingerprints})
  masks = {f.relpath: f.mask_relpaths for f in fingerprints}
  dropped = []
  if label_conflicts == 'drop':
    for group in (g for g in duplicates if g.is_label_conflict):
      reason = data_audit.conflict_reason(group)
      dropped += [image_files.ExcludedFile(m.file, reason, masks[m.file])
                  for m in group.files]
  kept = sorted(set(groups) - {d.file for d in dropped})
  splits = group_split.assign_groups_to_splits(
      [(groups[path], labels[path]) for path in kept], ratios, split_seed)
  return SplitPlan(assignment={path: (groups[path], splits[groups[path]]) for path in kept},
                   labels=labels, groups=duplicates, dropped=dropped,
                   masks=masks)
