"""Grad-CAM over the test split: a gallery to look at and a pointing-game score.

The gallery explains the class the model chose, correct and wrong calls alike,
because a wrong call is best understood through what drove it. The pointing
game asks whether the evidence for the true class sits on the lesion: the share
of test images with a lesion mask whose true-class heatmap peaks inside it.
"""

import dataclasses
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import grad_cam
from models import preprocessing
from run_report import examples as examples_lib

_BATCH = 32


@dataclasses.dataclass
class Explanation:
  filename: str
  label: int
  predicted: int
  confidence: float
  image: np.ndarray              # [size, size] in [0, 1], what the model saw
  heatmap: np.ndarray            # [size, size] in [0, 1], for the predicted class
  mask: Optional[np.ndarray]     # [size, size] bool, None without a lesion


@dataclasses.dataclass
class Explanations:
  gallery: List[Explanation]
  pointing_hits: int
  pointing_total: int             # test images with a non-empty lesion mask

  @property
  def pointing_score(self) -> float:
    return self.pointing_hits / self.pointing_total if self.pointing_total else float('nan')


def _model_inputs(split: examples_lib.SplitExamples, size: int):
  """The transformed images and masks: the decoding the transform graph applies."""
  images = np.stack([preprocessing.decode_image(tf.constant(e), size).numpy()
                     for e in split.images])
  masks = [preprocessing.decode_mask(tf.constant(m), size).numpy()[..., 0] > 0.5
           if m else None for m in split.masks]
  return images, [m if m is not None and m.any() else None for m in masks]


def _heatmaps(model: keras.Model, images: np.ndarray, classes: np.ndarray,
              layer: Optional[keras.layers.Layer]) -> np.ndarray:
  return np.concatenate([
      grad_cam.grad_cam(model, images[i:i + _BATCH], classes[i:i + _BATCH], layer)
      for i in range(0, len(images), _BATCH)])


def _pick(labels, predicted, num_classes: int, per_group: int) -> List[int]:
  """Up to `per_group` correct and `per_group` wrong indices per true class."""
  chosen = []
  for k in range(num_classes):
    of_class = labels == k
    chosen += list(np.flatnonzero(of_class & (predicted == k))[:per_group])
    chosen += list(np.flatnonzero(of_class & (predicted != k))[:per_group])
  return chosen


def explain(model: keras.Model, split: examples_lib.SplitExamples,
            probabilities: np.ndarray, image_size: int, class_names: Sequence[str],
            layer: Optional[keras.layers.Layer] = None,
            per_group: int = 2) -> Explanations:
  """Grad-CAM gallery and pointing game for the examples of `split`.

  `layer` is the feature map explained (`grad_cam.explained_layer`); None:
  the deepest spatial one.
  """
  images, masks = _model_inputs(split, image_size)
  labels, predicted = split.labels, probabilities.argmax(axis=1)
  known = labels >= 0
  with_lesion = np.array([m is not None for m in masks]) & known
  hits, total = 0, int(with_lesion.sum())
  if total:
    true_class_maps = _heatmaps(model, images[with_lesion], labels[with_lesion],
                                layer)
    lesion_masks = [m for m, keep in zip(masks, with_lesion) if keep]
    hits = sum(grad_cam.peak_inside(h, m) for h, m in zip(true_class_maps, lesion_masks))
  chosen = _pick(labels, predicted, len(class_names), per_group)
  gallery = []
  if chosen:
    chosen_maps = _heatmaps(model, images[chosen], predicted[chosen], layer)
    gallery = [Explanation(split.filenames[i], int(labels[i]), int(predicted[i]),
                           float(probabilities[i].max()), images[i, ..., 0], heatmap,
                           masks[i])
               for i, heatmap in zip(chosen, chosen_maps)]
  return Explanations(gallery, int(hits), total)
