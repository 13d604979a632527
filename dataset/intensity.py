"""Per-image intensity statistics: what a new scanner or a changed export shifts.

A new device, other gain or another export setting moves an image's grey
levels (its mean and spread) and the share of near-black pixels (the frame
around the sector, dark fluid, a darker gain). ImageExampleGen records them
with every example, so TFDV's drift comparators can set new data's
distributions against those the served model was trained on.
"""

import dataclasses
import io

import numpy as np
from PIL import Image

# A grey level at or below this is near-black (8-bit).
DARK_LEVEL = 10


@dataclasses.dataclass(frozen=True)
class IntensityStats:
  mean: float             # mean grey level, 0..255
  spread: float           # standard deviation of the grey levels
  dark_fraction: float    # share of pixels at or below DARK_LEVEL


def intensity_stats(image_bytes: bytes) -> IntensityStats:
  """The statistics of the image as the model sees it: converted to 8-bit grey."""
  with Image.open(io.BytesIO(image_bytes)) as image:
    grey = np.asarray(image.convert('L'), dtype=np.float32)
  return IntensityStats(mean=float(grey.mean()), spread=float(grey.std()),
                        dark_fraction=float((grey <= DARK_LEVEL).mean()))
