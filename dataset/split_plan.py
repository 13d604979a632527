"""Which images are ingested, in which group and split.

Pure domain logic over the images' fingerprints: group near-duplicates, apply
the label-conflict policy, join each patient's images into one group with
their near-duplicates (union-find: a group is every image linked to another by
either), and assign whole groups to splits, stratified by site and class.
ImageExampleGen runs it once over all fingerprints; the benches run it to
split as the pipeline does.

With the served model's split ledger (dataset/split_ledger.py), every image
the ledger lists keeps its split: a group with old images goes where they
are, whatever joined it or left it; only groups of new images are assigned,
filling each (site, class) stratum towards its shares. A group whose old
images sit in several splits (a new image links near-duplicates or a patient's
images that were apart) keeps its old images where they are, and its new
images are quarantined, so no split gains a copy of another split's image.
"""

import collections
import dataclasses
from typing import Dict, List, Mapping, Sequence, Set, Tuple

from dataset import data_audit
from dataset import exports
from dataset import group_split
from dataset import image_files
from dataset import perceptual_hash


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
  # Patients whose images carry more than one label.
  patient_conflicts: List[data_audit.PatientConflict] = dataclasses.field(
      default_factory=list)
  # sha256 -> split: the ledger given, with every image assigned here.
  ledger: Dict[str, str] = dataclasses.field(default_factory=dict)
  # Images a later export sent again, read from the earliest (dataset/exports.py).
  repeated: List[image_files.ExcludedFile] = dataclasses.field(default_factory=list)

  def splits(self) -> Dict[str, str]:
    """relpath -> split of every image to ingest."""
    return {path: split for path, (_, split) in self.assignment.items()}


def plan_splits(fingerprints: Sequence[image_files.ImageFingerprint],
                ratios: Mapping[str, int], near_duplicate_max_bits: int,
                split_seed: int, label_conflicts: str,
                ledger: Mapping[str, str] = {}) -> SplitPlan:
  """Groups near-duplicates, applies the label-conflict policy, assigns splits.

  `ratios` maps split names to relative sizes; `label_conflicts` is one of
  `data_audit.LABEL_CONFLICT_POLICIES` ('drop' removes every member of a group
  filed under several classes; the others keep them, and the audit decides).
  `ledger` (sha256 -> split) holds the splits images already had; entries
  naming a split not in `ratios` are ignored. An image a later export sent
  again is read once, from the earliest export (`repeated`).
  """
  fingerprints, repeated = exports.first_copies(fingerprints)
  groups = image_files.group_key(fingerprints, near_duplicate_max_bits)
  labels = {f.relpath: f.label for f in fingerprints}
  duplicates = data_audit.duplicate_groups(
      groups, labels, {f.relpath: f.sha256 for f in fingerprints},
      {f.relpath: f'{f.site}/{f.patient_id}' for f in fingerprints if f.patient_id})
  masks = {f.relpath: f.mask_relpaths for f in fingerprints}
  dropped = [image_files.ExcludedFile(m.file, data_audit.conflict_reason(g), masks[m.file])
             for g in duplicates if label_conflicts == 'drop' and g.is_label_conflict
             for m in g.files]
  kept = sorted(set(groups) - {d.file for d in dropped})
  by_path = {f.relpath: f for f in fingerprints}
  split_groups = _with_patients(kept, groups, by_path)
  # relpath -> its split in the ledger, of the images the ledger lists.
  old = {path: ledger[by_path[path].sha256] for path in kept
         if ledger.get(by_path[path].sha256) in ratios}
  old_splits: Dict[str, Set[str]] = collections.defaultdict(set)
  for path, split in old.items():
    old_splits[split_groups[path]].add(split)
  apart = {group for group, splits in old_splits.items() if len(splits) > 1}
  assignment = {path: (split_groups[path], split) for path, split in old.items()
                if split_groups[path] in apart}
  dropped += [image_files.ExcludedFile(
                  path, _joins_splits_reason(sorted(old_splits[split_groups[path]])), masks[path])
              for path in kept if split_groups[path] in apart and path not in old]
  placed = [path for path in kept if split_groups[path] not in apart]
  splits = group_split.assign_groups_to_splits(
      [(split_groups[path], (by_path[path].site, labels[path])) for path in placed],
      ratios, split_seed,
      fixed={group: next(iter(s)) for group, s in old_splits.items() if group not in apart})
  assignment.update({path: (split_groups[path], splits[split_groups[path]])
                     for path in placed})
  return SplitPlan(assignment=assignment,
                   labels=labels, groups=duplicates, dropped=dropped,
                   masks=masks, patient_conflicts=patient_conflicts(fingerprints),
                   ledger={**ledger, **{by_path[path].sha256: split
                                        for path, (_, split) in assignment.items()}},
                   repeated=repeated)


def _joins_splits_reason(splits: Sequence[str]) -> str:
  return (f'near-duplicate of (or same patient as) images already in the '
          f'{" and ".join(splits)} splits: kept out so that no split gains a copy '
          'of another\'s image')


def _with_patients(kept: Sequence[str], groups: Mapping[str, str],
                   by_path: Mapping[str, image_files.ImageFingerprint]) -> Dict[str, str]:
  """relpath -> its split group: near-duplicate groups joined by shared patients.

  Patient ids are a site's own (patient 1 of two hospitals are two people).
  A joined group takes the id of the near-duplicate group of its first image
  in name order, so images without a patient keep their near-duplicate ids.
  """
  joined = perceptual_hash.UnionFind(len(kept))
  first_of: Dict[object, int] = {}
  for i, path in enumerate(kept):
    fp = by_path[path]
    joined.union(first_of.setdefault(('group', groups[path]), i), i)
    if fp.patient_id:
      joined.union(first_of.setdefault(('patient', fp.site, fp.patient_id), i), i)
  return {path: groups[kept[joined.find(i)]] for i, path in enumerate(kept)}


def patient_conflicts(fingerprints: Sequence[image_files.ImageFingerprint]
                      ) -> List[data_audit.PatientConflict]:
  """Patients (per site) whose readable images are filed under several labels."""
  members: Dict[Tuple[str, str], List[image_files.ImageFingerprint]] = (
      collections.defaultdict(list))
  for fp in fingerprints:
    if fp.patient_id:
      members[(fp.site, fp.patient_id)].append(fp)
  return [data_audit.PatientConflict(
              site=site, patient_id=patient,
              files=tuple(data_audit.DuplicateMember(f.relpath, f.label)
                          for f in sorted(fps, key=lambda f: f.relpath)),
              labels=tuple(sorted({f.label for f in fps})))
          for (site, patient), fps in sorted(members.items())
          if len({f.label for f in fps}) > 1]
