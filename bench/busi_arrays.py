"""BUSI as in-memory transformed examples, split the way the pipeline splits it.

The benchmark must measure the model on the data the pipeline would give it:
the same near-duplicate groups, the same group-to-split assignment, the same
decoded pixels. So this reuses ImageExampleGen's helpers and the Transform's
decoders instead of re-implementing them; only the Beam plumbing is skipped.
"""

import dataclasses
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from contracts import configs
from contracts import features
from dataset import group_split
from dataset import image_files
from dataset import split_plan
from models import preprocessing


@dataclasses.dataclass(frozen=True)
class TransformedImages:
  """Decoded images, masks and labels, with each image's near-duplicate group."""
  relpaths: List[str]
  groups: List[str]
  images: np.ndarray     # float32 [n, size, size, 1] in [0, 1]
  masks: np.ndarray      # float32 [n, size, size, 1], 0 or 1
  labels: np.ndarray     # int64 [n], index into class_names

  def subset(self, indices: np.ndarray) -> 'TransformedImages':
    return TransformedImages([self.relpaths[i] for i in indices],
                             [self.groups[i] for i in indices],
                             self.images[indices], self.masks[indices],
                             self.labels[indices])

  def dataset(self) -> tf.data.Dataset:
    """Unbatched dicts of transformed features, as the Trainer reads them."""
    return tf.data.Dataset.from_tensor_slices({
        features.IMAGE_XF: self.images, features.MASK_XF: self.masks,
        features.LABEL_XF: self.labels})


def fingerprints(data: configs.DataConfig) -> List[image_files.ImageFingerprint]:
  """The readable images of the configured classes, as ImageExampleGen fingerprints them."""
  scan = image_files.scan_folder(data.data_root)
  found = []
  for image_file in scan.images:
    if image_file.label not in data.class_names:
      continue
    try:
      found.append(image_files.fingerprint(data.data_root, image_file))
    except image_files.InvalidImageError:
      continue
  return found


def decode(data: configs.DataConfig, plan: split_plan.SplitPlan,
           found: Sequence[image_files.ImageFingerprint],
           image_size: int) -> TransformedImages:
  """The images `plan` ingests, in path order, decoded with their union masks."""
  class_index = {name: i for i, name in enumerate(data.class_names)}
  chosen = sorted((f for f in found if f.relpath in plan.assignment),
                  key=lambda f: f.relpath)
  images, masks = [], []
  for fp in chosen:
    mask_png, _ = image_files.union_mask(data.data_root, fp.mask_relpaths,
                                         (fp.width, fp.height))
    encoded = image_files.read_bytes(data.data_root, fp.relpath)
    images.append(preprocessing.decode_image(tf.constant(encoded), image_size).numpy())
    masks.append(preprocessing.decode_mask(tf.constant(mask_png), image_size).numpy())
  return TransformedImages(
      relpaths=[fp.relpath for fp in chosen],
      groups=[plan.assignment[fp.relpath][0] for fp in chosen],
      images=np.stack(images), masks=np.stack(masks),
      labels=np.array([class_index[fp.label] for fp in chosen], np.int64))


def load(data: configs.DataConfig, image_size: int) -> TransformedImages:
  """Reads the images ImageExampleGen would ingest, each with its union mask.

  Unreadable files and the members of label-conflict groups that the
  configured policy drops are left out, as the pipeline leaves them out.
  """
  found = fingerprints(data)
  plan = split_plan.plan_splits(found, data.splits.as_dict(),
                                data.near_duplicate_max_bits, data.split_seed,
                                data.label_conflicts)
  return decode(data, plan, found, image_size)


def split_indices(images: TransformedImages, ratios: Dict[str, int],
                  seed: int, class_names: Sequence[str]) -> Dict[str, np.ndarray]:
  """Split name -> example indices, by the pipeline's group-stratified assignment."""
  labels = [class_names[i] for i in images.labels]
  assignment = group_split.assign_groups_to_splits(
      list(zip(images.groups, labels)), ratios, seed)
  splits = np.array([assignment[g] for g in images.groups])
  return {name: np.flatnonzero(splits == name) for name in ratios}


def pipeline_split(images: TransformedImages,
                   data: configs.DataConfig) -> Dict[str, np.ndarray]:
  """The train / eval / test indices ImageExampleGen would write."""
  return split_indices(images, data.splits.as_dict(), data.split_seed,
                       data.class_names)


def cross_validation_folds(images: TransformedImages, data: configs.DataConfig,
                           folds: int) -> List[Dict[str, np.ndarray]]:
  """Per fold: test is one fold, eval the next, train the rest.

  Folds are group-stratified like the pipeline's splits, so near-duplicates
  never sit on both sides of a fold boundary.
  """
  if folds < 3:
    raise ValueError(f'--folds must be at least 3 (test, eval and train folds), got {folds}')
  names = [f'fold{k}' for k in range(folds)]
  by_fold = split_indices(images, {name: 1 for name in names}, data.split_seed,
                          data.class_names)
  result = []
  for k in range(folds):
    test, evaluation = names[k], names[(k + 1) % folds]
    train = np.sort(np.concatenate(
        [by_fold[n] for n in names if n not in (test, evaluation)]))
    result.append({'train': train, 'eval': by_fold[evaluation], 'test': by_fold[test]})
  return result
