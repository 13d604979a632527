"""BUSI as in-memory transformed examples, split the way the pipeline splits it.

The benchmark must measure the model on the data the pipeline would give it:
the same near-duplicate groups, the same group-to-split assignment, the same
decoded pixels. So this reuses ImageExampleGen's helpers and the Transform's
decoders instead of re-implementing them; only the Beam plumbing is skipped.
"""

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from contracts import configs
from contracts import features
from dataset import group_split
from dataset import image_files
from dataset import manifest
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


def load(data: configs.DataConfig, image_size: int) -> TransformedImages:
  """Reads the images ImageExampleGen would ingest, each with its union mask.

  Unreadable files and the members of label-conflict groups that the
  configured policy drops are left out, as the pipeline leaves them out.
  """
  images, _ = _load_planned(data.data_root, image_files.scan_folder(data.data_root),
                            data, image_size)
  return images


def fingerprints(data: configs.DataConfig) -> List[image_files.ImageFingerprint]:
  """The readable images of the configured classes, as ImageExampleGen fingerprints them."""
  return _fingerprints(data.data_root, image_files.scan_folder(data.data_root), data)


def decode(data: configs.DataConfig, plan: split_plan.SplitPlan,
           found: Sequence[image_files.ImageFingerprint],
           image_size: int) -> TransformedImages:
  """The images `plan` ingests, in path order, decoded with their union masks."""
  chosen = sorted((f for f in found if f.relpath in plan.assignment), key=lambda f: f.relpath)
  return _decode(data.data_root, chosen, plan, data, image_size)


def load_site(site: configs.Site, data: configs.DataConfig,
              image_size: int) -> Tuple[TransformedImages, Dict[str, np.ndarray]]:
  """A named site as ImageExampleGen reads it, and the split it gives the site.

  A manifest site (BUS-BRA) keeps each patient's images in one split; the
  split is ImageExampleGen's plan itself (stratified by site and class, so a
  site's split is the same alone or beside other sites), which holds even for
  a site without some class, where `pipeline_split` cannot stratify.
  """
  roots, scan = _site_scan(site, data)
  images, plan = _load_planned(roots, scan, data, image_size)
  splits = np.array([plan.assignment[path][1] for path in images.relpaths])
  return images, {name: np.flatnonzero(splits == name) for name in data.splits.as_dict()}


def site_split(site: configs.Site, data: configs.DataConfig) -> Dict[str, str]:
  """relpath (after the site's name) -> split, as `load_site` splits, without decoding."""
  roots, scan = _site_scan(site, data)
  _, plan = _plan(roots, scan, data)
  return plan.splits()


def _site_scan(site: configs.Site, data: configs.DataConfig):
  roots = image_files.SiteRoots(((site.name, site.root),))
  if manifest.is_manifest_site(site.root, site.columns):
    scan = manifest.scan_manifest(site.root, site.columns, data.class_names)
  else:
    scan = image_files.scan_folder(site.root, data.class_names)
  return roots, image_files.with_site(scan, site.name, roots.prefix(site.name))


def _fingerprints(root: image_files.Root, scan: image_files.FolderScan,
                  data: configs.DataConfig) -> List[image_files.ImageFingerprint]:
  found = []
  for image_file in scan.images:
    if image_file.label not in data.class_names:
      continue
    try:
      found.append(image_files.fingerprint(root, image_file))
    except image_files.InvalidImageError:
      continue
  return found


def _plan(root: image_files.Root, scan: image_files.FolderScan, data: configs.DataConfig):
  """The fingerprints of the images the plan ingests (sorted by path), and the plan."""
  found = _fingerprints(root, scan, data)
  plan = split_plan.plan_splits(found, data.splits.as_dict(),
                                data.near_duplicate_max_bits, data.split_seed,
                                data.label_conflicts)
  return sorted((f for f in found if f.relpath in plan.assignment),
                key=lambda f: f.relpath), plan


def _load_planned(root: image_files.Root, scan: image_files.FolderScan,
                  data: configs.DataConfig,
                  image_size: int) -> Tuple[TransformedImages, split_plan.SplitPlan]:
  chosen, plan = _plan(root, scan, data)
  return _decode(root, chosen, plan, data, image_size), plan


def _decode(root: image_files.Root, chosen: Sequence[image_files.ImageFingerprint],
            plan: split_plan.SplitPlan, data: configs.DataConfig,
            image_size: int) -> TransformedImages:
  class_index = {name: i for i, name in enumerate(data.class_names)}
  images, masks = [], []
  for fp in chosen:
    mask_png, _ = image_files.union_mask(root, fp.mask_relpaths, (fp.width, fp.height))
    encoded = image_files.read_bytes(root, fp.relpath)
    images.append(preprocessing.decode_image(tf.constant(encoded), image_size).numpy())
    masks.append(preprocessing.decode_mask(tf.constant(mask_png), image_size).numpy())
  return TransformedImages(
      relpaths=[fp.relpath for fp in chosen],
      groups=[plan.assignment[fp.relpath][0] for fp in chosen],
      images=np.stack(images), masks=np.stack(masks),
      labels=np.array([class_index[fp.label] for fp in chosen], np.int64))


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
