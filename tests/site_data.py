"""Two-site test data and rule-based models, for the per-site evaluation tests.

ImageExampleGen does not write `site` yet, so `write_examples` writes the
tf.Examples itself, in TFX's split layout (`Split-<name>/` plain TFRecords,
the data audit beside them), with `site` and `device` on each. `RuleModel` is a
SavedModel with the served model's `serving_default` contract whose decision is
known in advance: a scan is malignant when enough of it is darker than
`dark_level`, benign when enough is bright, normal otherwise. A site whose
malignant lesions are only moderately dark is then missed by a model with a
low `dark_level`: a model that is worse at one site by construction.
"""

import dataclasses
import os
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from contracts import features
from contracts import serving
from dataset import data_audit
from tests.fixtures import exported_model

_SIZE = 32
_BACKGROUND = 128
_BENIGN_LESION = 230
# Share of the image a lesion must cover for the rule to see it.
_LESION_SHARE = 0.03


@dataclasses.dataclass(frozen=True)
class Site:
  name: str
  device: str
  # class -> test scans
  counts: Mapping[str, int]
  # Intensity of this site's malignant lesions (BUSI-like dark: 25).
  malignant_lesion: int = 25


def _scan(label: str, site: Site, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
  image = rng.normal(_BACKGROUND, 3, (_SIZE, _SIZE))
  mask = np.zeros((_SIZE, _SIZE), dtype=bool)
  if label != features.NORMAL_CLASS:
    top, left = rng.integers(4, _SIZE // 2, size=2)
    mask[top:top + 10, left:left + 10] = True
    image[mask] = (site.malignant_lesion if label == features.MALIGNANT_CLASS
                   else _BENIGN_LESION)
  return np.clip(image, 0, 255).astype(np.uint8), mask


def _example(label: str, site: Site, n: int, rng: np.random.Generator) -> tf.train.Example:
  image, mask = _scan(label, site, rng)
  def _bytes(value: bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
  def _int(value: int):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
  name = f'{site.name}/{label}/{label} ({n}).png'
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: _bytes(exported_model.encode_png(image)),
      features.LABEL_KEY: _bytes(label.encode()),
      features.FILENAME_KEY: _bytes(name.encode()),
      features.HEIGHT_KEY: _int(_SIZE), features.WIDTH_KEY: _int(_SIZE),
      features.SHA256_KEY: _bytes(b'0' * 64), features.PHASH_KEY: _bytes(b'0' * 16),
      features.GROUP_KEY: _bytes(name.encode()),
      features.MASK_KEY: _bytes(exported_model.encode_png(mask.astype(np.uint8) * 255)),
      features.MASK_COUNT_KEY: _int(int(mask.any())),
      features.SITE_KEY: _bytes(site.name.encode()),
      features.DEVICE_KEY: _bytes(site.device.encode()),
      features.PATIENT_KEY: _bytes(b''),
  }))


def write_examples(uri: str, sites: Sequence[Site], split: str = 'test',
                   seed: int = 0) -> str:
  """Writes `uri/Split-<split>/` with every site's scans and a data audit; returns `uri`."""
  rng = np.random.default_rng(seed)
  folder = os.path.join(uri, f'Split-{split}')
  os.makedirs(folder, exist_ok=True)
  class_counts: Dict[str, int] = {name: 0 for name in features.CLASS_NAMES}
  with tf.io.TFRecordWriter(os.path.join(folder, 'data_tfrecord-00000-of-00001')) as out:
    for site in sites:
      for label, count in site.counts.items():
        for n in range(1, count + 1):
          out.write(_example(label, site, n, rng).SerializeToString())
        class_counts[label] += count
  audit = data_audit.DataAudit(
      data_root=uri,
      policy=data_audit.DataPolicy(class_names=features.CLASS_NAMES, split_names=(split,)),
      near_duplicate_max_bits=10, ingested=sum(class_counts.values()), ingested_files=(),
      class_counts=class_counts, independent_images_per_class=class_counts,
      split_counts={split: class_counts}, quarantined=(), ignored=(), notes=(),
      near_duplicate_groups=())
  data_audit.write(audit, uri)
  return uri


class RuleModel(tf.Module):
  """Dark lesion: malignant; bright lesion: benign; none: normal (scores 0.8/0.1/0.1)."""

  def __init__(self, dark_level: int):
    super().__init__()
    self.dark_level = tf.constant(float(dark_level))

  def _scores(self, image: tf.Tensor) -> tf.Tensor:
    pixels = tf.cast(tf.io.decode_png(image, channels=1), tf.float32)
    dark = tf.reduce_mean(tf.cast(pixels < self.dark_level, tf.float32)) > _LESION_SHARE
    bright = tf.reduce_mean(tf.cast(pixels > 200.0, tf.float32)) > _LESION_SHARE
    malignant = features.CLASS_NAMES.index(features.MALIGNANT_CLASS)
    benign = features.CLASS_NAMES.index('benign')
    normal = features.CLASS_NAMES.index(features.NORMAL_CLASS)
    top = tf.where(dark, malignant, tf.where(bright, benign, normal))
    return tf.one_hot(top, len(features.CLASS_NAMES), on_value=0.8, off_value=0.1)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve_examples(self, examples):
    parsed = tf.io.parse_example(examples, {
        features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    scores = tf.map_fn(self._scores, parsed[features.IMAGE_KEY],
                       fn_output_signature=tf.float32)
    classes = tf.tile(tf.constant([list(features.CLASS_NAMES)]), [tf.shape(scores)[0], 1])
    return {serving.SCORES_OUTPUT: scores, serving.CLASSES_OUTPUT: classes}


def save_rule_model(model_uri: str, dark_level: int) -> str:
  """A Model artifact folder (`Format-Serving/` inside) holding a RuleModel."""
  model = RuleModel(dark_level)
  export_dir = os.path.join(model_uri, 'Format-Serving')
  tf.saved_model.save(model, export_dir, signatures={
      serving.SERVING_DEFAULT: model.serve_examples})
  return model_uri
