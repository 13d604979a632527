"""The report's figures, drawn with matplotlib and returned as PNG bytes."""

import io
from typing import Dict, List, Mapping, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # files only; never a window, never a display server

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

from run_report import curves
from run_report import explanations as explanations_lib

_DPI = 100


def _png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.tight_layout()
  figure.savefig(buffer, format='png', dpi=_DPI)
  plt.close(figure)
  return buffer.getvalue()


def class_counts(split_counts: Mapping[str, Mapping[str, int]],
                 class_names: Sequence[str]) -> bytes:
  """Grouped bars: images per class in each split."""
  splits = list(split_counts)
  figure, axes = plt.subplots(figsize=(6, 3.2))
  width = 0.8 / max(1, len(splits))
  positions = np.arange(len(class_names))
  for i, split in enumerate(splits):
    counts = [split_counts[split].get(name, 0) for name in class_names]
    bars = axes.bar(positions + i * width, counts, width, label=split)
    axes.bar_label(bars, fontsize=8)
  axes.set_xticks(positions + width * (len(splits) - 1) / 2, class_names)
  axes.set_ylabel('images')
  axes.legend()
  return _png(figure)


def distributions(values_by_split: Mapping[str, Mapping[str, np.ndarray]],
                  bins: int = 20) -> bytes:
  """One histogram panel per quantity, splits overlaid (as densities)."""
  quantities = list(next(iter(values_by_split.values())))
  figure, axes = plt.subplots(1, len(quantities), figsize=(4 * len(quantities), 3))
  for axis, quantity in zip(np.atleast_1d(axes), quantities):
    every = np.concatenate([v[quantity] for v in values_by_split.values()])
    edges = np.histogram_bin_edges(every, bins=bins)
    for split, values in values_by_split.items():
      axis.hist(values[quantity], bins=edges, histtype='step', density=True,
                label=f'{split} (n={len(values[quantity])})', linewidth=1.5)
    axis.set_xlabel(quantity)
    axis.set_yticks([])
  np.atleast_1d(axes)[0].legend(fontsize=8)
  return _png(figure)


def training_curves(history: Mapping[str, List[float]], loss_key: str,
                    accuracy_key: str) -> bytes:
  """Loss and accuracy per epoch, train against eval."""
  figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
  for axis, key, title in ((axes[0], loss_key, 'loss'), (axes[1], accuracy_key, 'accuracy')):
    for prefix, name in (('', 'train'), ('val_', 'eval')):
      values = history.get(prefix + key)
      if values:
        axis.plot(np.arange(1, len(values) + 1), values, marker='o', markersize=3,
                  label=name)
    axis.set_xlabel('epoch')
    axis.set_title(title)
    axis.legend()
  return _png(figure)


def confusion_matrix(counts: np.ndarray, class_names: Sequence[str]) -> bytes:
  figure, axis = plt.subplots(figsize=(4, 3.6))
  axis.imshow(counts, cmap='Blues')
  for (row, col), value in np.ndenumerate(counts):
    axis.text(col, row, str(value), ha='center', va='center',
              color='white' if value > counts.max() / 2 else 'black')
  axis.set_xticks(range(len(class_names)), class_names)
  axis.set_yticks(range(len(class_names)), class_names)
  axis.set_xlabel('predicted')
  axis.set_ylabel('true')
  return _png(figure)


def roc_curves(by_class: Dict[str, curves.Curve]) -> bytes:
  figure, axis = plt.subplots(figsize=(4.2, 3.8))
  for name, curve in by_class.items():
    axis.plot(curve.x, curve.y, label=f'{name} (AUC {curve.area:.3f})')
  axis.plot([0, 1], [0, 1], color='grey', linestyle=':', linewidth=1)
  axis.set_xlabel('false positive rate')
  axis.set_ylabel('true positive rate')
  axis.legend(fontsize=8, loc='lower right')
  return _png(figure)


def roc_with_operating_points(curve: curves.Curve,
                              points: Mapping[str, Tuple[float, float]]) -> bytes:
  """One ROC curve and named (false positive rate, true positive rate) points on it."""
  figure, axis = plt.subplots(figsize=(4.2, 3.8))
  axis.plot(curve.x, curve.y, label=f'model (AUC {curve.area:.3f})')
  for name, (x, y) in points.items():
    axis.plot([x], [y], marker='o', linestyle='none', label=name)
  axis.plot([0, 1], [0, 1], color='grey', linestyle=':', linewidth=1)
  axis.set_xlabel('false positive rate (1 - specificity)')
  axis.set_ylabel('sensitivity')
  axis.legend(fontsize=8, loc='lower right')
  return _png(figure)


def precision_recall(curve: curves.Curve, class_name: str, prevalence: float) -> bytes:
  figure, axis = plt.subplots(figsize=(4.2, 3.8))
  axis.step(curve.x, curve.y, where='post',
            label=f'{class_name} (AP {curve.area:.3f})')
  axis.axhline(prevalence, color='grey', linestyle=':', linewidth=1,
               label=f'prevalence {prevalence:.2f}')
  axis.set_xlabel('recall (sensitivity)')
  axis.set_ylabel('precision')
  axis.set_ylim(0, 1.05)
  axis.legend(fontsize=8, loc='lower left')
  return _png(figure)


def reliability(bins: curves.Reliability) -> bytes:
  figure, axis = plt.subplots(figsize=(4.2, 3.8))
  axis.plot([0, 1], [0, 1], color='grey', linestyle=':', linewidth=1,
            label='perfect calibration')
  axis.plot(bins.confidence, bins.accuracy, marker='o',
            label=f'model (ECE {bins.expected_calibration_error:.3f})')
  for x, y, n in zip(bins.confidence, bins.accuracy, bins.counts):
    axis.annotate(str(n), (x, y), textcoords='offset points', xytext=(4, -10), fontsize=7)
  axis.set_xlabel('confidence of the top class')
  axis.set_ylabel('accuracy')
  axis.set_xlim(0, 1)
  axis.set_ylim(0, 1.05)
  axis.legend(fontsize=8, loc='upper left')
  return _png(figure)


def grad_cam_gallery(gallery: Sequence[explanations_lib.Explanation],
                     class_names: Sequence[str], columns: int = 4) -> bytes:
  """Each image with its heatmap overlaid and the lesion mask outlined in green."""
  rows = int(np.ceil(len(gallery) / columns))
  figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows),
                              squeeze=False)
  for axis in axes.flat:
    axis.axis('off')
  for axis, item in zip(axes.flat, gallery):
    axis.imshow(item.image, cmap='gray', vmin=0, vmax=1)
    axis.imshow(item.heatmap, cmap='jet', alpha=0.4, vmin=0, vmax=1)
    if item.mask is not None:
      axis.contour(item.mask.astype(float), levels=[0.5], colors='lime', linewidths=1)
    if item.heatmap.max() > 0:
      row, col = np.unravel_index(np.argmax(item.heatmap), item.heatmap.shape)
      axis.plot(col, row, marker='+', color='white', markersize=8)
    verdict = 'correct' if item.label == item.predicted else 'WRONG'
    axis.set_title(f'{class_names[item.label]} -> {class_names[item.predicted]} '
                   f'({item.confidence:.2f})\n{verdict}: {item.filename[-28:]}',
                   fontsize=7, color='black' if verdict == 'correct' else 'crimson')
  return _png(figure)
