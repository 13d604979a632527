"""A split's examples as the report uses them, and a SavedModel's scores on them.

The split is read from ImageExampleGen's TFRecords, so the report sees the
same images, labels and lesion masks that the Evaluator saw.
"""

import dataclasses
import io
import os
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from contracts import features
from contracts import serving

_BATCH = 32


@dataclasses.dataclass
class SplitExamples:
  filenames: List[str]
  labels: np.ndarray          # class index, -1 for a label outside class_names
  heights: np.ndarray
  widths: np.ndarray
  mean_intensities: np.ndarray  # mean grey level (0-255) of each image
  sites: np.ndarray           # str: the site (named data root) of each image
  birads: np.ndarray          # the radiologist's BI-RADS category, NaN where none
  # The payload, kept only when asked for: the split may not fit in memory twice.
  serialized: List[bytes]
  images: List[bytes]         # encoded PNG/JPEG, as ingested
  masks: List[bytes]          # encoded PNG of the union of lesion masks, or b''

  def __len__(self) -> int:
    return len(self.filenames)


def _first(example: tf.train.Example, key: str):
  feature = example.features.feature.get(key)
  if feature is None:
    return None
  values = getattr(feature, feature.WhichOneof('kind') or 'bytes_list').value
  return values[0] if values else None


def _mean_intensity(encoded: bytes) -> float:
  with Image.open(io.BytesIO(encoded)) as image:
    return float(np.asarray(image.convert('L'), dtype=np.float32).mean())


def read_split(examples_uri: str, split: str, class_names: Sequence[str],
               keep_payload: bool = False) -> Optional[SplitExamples]:
  """The examples of `split`, in file order; None when the split has no files."""
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*')))
  if not files:
    return None
  label_of = {name.encode(): k for k, name in enumerate(class_names)}
  split_examples = SplitExamples([], [], [], [], [], [], [], [], [], [])
  # Runs before plain TFRecords wrote GZIP files, named .gz; reports of them still build.
  compression = 'GZIP' if files[0].endswith('.gz') else ''
  for record in tf.data.TFRecordDataset(files, compression_type=compression):
    serialized = record.numpy()
    example = tf.train.Example.FromString(serialized)
    image = _first(example, features.IMAGE_KEY) or b''
    split_examples.filenames.append((_first(example, features.FILENAME_KEY) or b'').decode())
    split_examples.labels.append(label_of.get(_first(example, features.LABEL_KEY), -1))
    split_examples.heights.append(_first(example, features.HEIGHT_KEY) or 0)
    split_examples.widths.append(_first(example, features.WIDTH_KEY) or 0)
    split_examples.mean_intensities.append(_mean_intensity(image))
    split_examples.sites.append((_first(example, features.SITE_KEY) or b'').decode())
    birads = _first(example, features.BIRADS_KEY)
    split_examples.birads.append(np.nan if birads is None else float(birads))
    if keep_payload:
      split_examples.serialized.append(serialized)
      split_examples.images.append(image)
      split_examples.masks.append(_first(example, features.MASK_KEY) or b'')
  for name in ('labels', 'heights', 'widths', 'mean_intensities', 'sites', 'birads'):
    setattr(split_examples, name, np.array(getattr(split_examples, name)))
  return split_examples


def predict(saved_model_dir: str, serialized: Sequence[bytes]) -> np.ndarray:
  """Class probabilities [N, classes] from the model's `serving_default` signature."""
  serve = tf.saved_model.load(saved_model_dir).signatures[serving.SERVING_DEFAULT]
  scores = [serve(**{serving.EXAMPLES_INPUT: tf.constant(
                list(serialized[start:start + _BATCH]))})[serving.SCORES_OUTPUT].numpy()
            for start in range(0, len(serialized), _BATCH)]
  return np.concatenate(scores)
