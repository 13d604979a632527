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

from models import features
from models import signatures

_BATCH = 32


@dataclasses.dataclass
class SplitExamples:
  serialized: List[bytes]
  filenames: List[str]
  labels: np.ndarray          # class index, -1 for a label outside class_names
  images: List[bytes]         # encoded PNG/JPEG, as ingested
  masks: List[bytes]          # encoded PNG of the union of lesion masks, or b''
  heights: np.ndarray
  widths: np.ndarray

  def __len__(self) -> int:
    return len(self.serialized)


def _first(example: tf.train.Example, key: str):
  feature = example.features.feature.get(key)
  if feature is None:
    return None
  values = getattr(feature, feature.WhichOneof('kind') or 'bytes_list').value
  return values[0] if values else None


def read_split(examples_uri: str, split: str,
               class_names: Sequence[str]) -> Optional[SplitExamples]:
  """The examples of `split`, in file order; None when the split has no files."""
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*')))
  if not files:
    return None
  serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]
  parsed = [tf.train.Example.FromString(s) for s in serialized]
  label_of = {name.encode(): k for k, name in enumerate(class_names)}
  return SplitExamples(
      serialized=serialized,
      filenames=[(_first(e, features.FILENAME_KEY) or b'').decode() for e in parsed],
      labels=np.array([label_of.get(_first(e, features.LABEL_KEY), -1) for e in parsed]),
      images=[_first(e, features.IMAGE_KEY) or b'' for e in parsed],
      masks=[_first(e, features.MASK_KEY) or b'' for e in parsed],
      heights=np.array([_first(e, features.HEIGHT_KEY) or 0 for e in parsed]),
      widths=np.array([_first(e, features.WIDTH_KEY) or 0 for e in parsed]))


def mean_intensities(encoded_images: Sequence[bytes]) -> np.ndarray:
  """Mean grey level (0-255) of each image, as ImageExampleGen stored it."""
  means = []
  for encoded in encoded_images:
    with Image.open(io.BytesIO(encoded)) as image:
      means.append(float(np.asarray(image.convert('L'), dtype=np.float32).mean()))
  return np.array(means)


def predict(saved_model_dir: str, serialized: Sequence[bytes]) -> np.ndarray:
  """Class probabilities [N, classes] from the model's `serving_default` signature."""
  serve = tf.saved_model.load(saved_model_dir).signatures[signatures.SERVING_DEFAULT]
  scores = [serve(examples=tf.constant(list(serialized[start:start + _BATCH])))['scores']
            .numpy() for start in range(0, len(serialized), _BATCH)]
  return np.concatenate(scores)
