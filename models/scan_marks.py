"""Synthetic caliper and text marks, painted on training scans.

Sonographers measure a lesion with calipers (two "+" marks joined by a dotted
line) and scanners burn text into the image. In BUSI the calipers sit on benign
and malignant lesions and almost never on normal scans, so a network can learn
"measured" instead of "lesion", a cue another hospital's scans do not share.
Painting the same kinds of mark at random places on training images of every
class makes them useless as a cue. The lesion mask is left as it is: a mark is
not a lesion.
"""

import tensorflow as tf

# Marks are 1-2 px wide, as a scanner draws them whatever the image size.
_HALF_WIDTH = 0.75
# Caliper arms, and the distance between the two calipers, as fractions of the side.
_ARM = (0.015, 0.03)
_SPAN = (0.1, 0.4)
_DASH_PX = 4.0
# Text: glyphs of 3x5 cells with a one-cell gap, 1 or 2 px a cell.
_GLYPH_ROWS, _GLYPH_COLUMNS = 5, 4
_CHARACTERS = (4, 12)
# Cells across the longest line of text.
_TEXT_COLUMNS = _CHARACTERS[1] * _GLYPH_COLUMNS
_INTENSITY = (0.6, 1.0)


def paint(image: tf.Tensor, seed: tf.Tensor, rate: float) -> tf.Tensor:
  """`image` ([H, W, 1], in [0, 1]) with marks painted on it.

  With probability `rate` it gets a caliper pair with its dotted line, and
  independently, with the same probability, a block of text. `seed` is a
  stateless seed (shape [2]), so a run's augmentation is reproducible.
  """
  seeds = tf.random.experimental.stateless_split(seed, 5)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  rows = tf.cast(tf.range(height), tf.float32)[:, tf.newaxis]
  columns = tf.cast(tf.range(width), tf.float32)[tf.newaxis, :]
  grid = (rows, columns, tf.cast(tf.minimum(height, width), tf.float32))
  marks = tf.maximum(
      _drawn(seeds[0], rate) * calipers(grid, seeds[1]),
      _drawn(seeds[2], rate) * text(grid, seeds[3]))
  intensity = tf.random.stateless_uniform([], seeds[4], *_INTENSITY)
  return tf.maximum(image, (marks * intensity)[..., tf.newaxis])


def _drawn(seed: tf.Tensor, rate: float) -> tf.Tensor:
  """1.0 with probability `rate`, else 0.0."""
  return tf.cast(tf.random.stateless_uniform([], seed) < rate, tf.float32)


def calipers(grid, seed: tf.Tensor) -> tf.Tensor:
  """[H, W] in {0, 1}: two "+" marks at random places and a dashed line between."""
  rows, columns, side = grid
  seeds = tf.random.experimental.stateless_split(seed, 4)
  start = tf.random.stateless_uniform([2], seeds[0], 0.0, 1.0) * side
  angle = tf.random.stateless_uniform([], seeds[1], 0.0, 6.2832)
  span = tf.random.stateless_uniform([], seeds[2], *_SPAN) * side
  end = start + span * tf.stack([tf.sin(angle), tf.cos(angle)])
  arm = tf.random.stateless_uniform([], seeds[3], *_ARM) * side
  return tf.maximum(tf.maximum(_cross(rows, columns, start, arm),
                               _cross(rows, columns, end, arm)),
                    _dashes(rows, columns, start, end))


def _cross(rows, columns, centre, arm) -> tf.Tensor:
  dy, dx = tf.abs(rows - centre[0]), tf.abs(columns - centre[1])
  horizontal = (dy < _HALF_WIDTH) & (dx <= arm)
  vertical = (dx < _HALF_WIDTH) & (dy <= arm)
  return tf.cast(horizontal | vertical, tf.float32)


def _dashes(rows, columns, start, end) -> tf.Tensor:
  """The segment start-end, drawn in dashes of `_DASH_PX`."""
  direction = end - start
  length = tf.norm(direction)
  unit = direction / length
  dy, dx = rows - start[0], columns - start[1]
  along = dy * unit[0] + dx * unit[1]
  across = tf.abs(dy * unit[1] - dx * unit[0])
  on_segment = (along >= 0) & (along <= length) & (across < _HALF_WIDTH)
  in_dash = tf.math.floormod(tf.floor(along / _DASH_PX), 2.0) < 1.0
  return tf.cast(on_segment & in_dash, tf.float32)


def text(grid, seed: tf.Tensor) -> tf.Tensor:
  """[H, W] in {0, 1}: a line of random 3x5 glyphs at a random place."""
  rows, columns, side = grid
  seeds = tf.random.experimental.stateless_split(seed, 4)
  characters = tf.random.stateless_uniform([], seeds[0], _CHARACTERS[0],
                                           _CHARACTERS[1] + 1, dtype=tf.int32)
  cell = tf.cast(tf.random.stateless_uniform([], seeds[1], 1, 3, dtype=tf.int32),
                 tf.float32)
  glyph_cells = tf.random.stateless_uniform([_GLYPH_ROWS, _TEXT_COLUMNS], seeds[2]) < 0.5
  gap = tf.range(_TEXT_COLUMNS) % _GLYPH_COLUMNS == _GLYPH_COLUMNS - 1
  used = tf.range(_TEXT_COLUMNS) < characters * _GLYPH_COLUMNS
  glyph_cells = glyph_cells & ~gap[tf.newaxis, :] & used[tf.newaxis, :]
  origin = tf.random.stateless_uniform([2], seeds[3], 0.0, 0.9) * side
  # Each pixel row and column's cell of the text ([H] and [W]).
  cell_row = tf.cast(tf.floor((rows[:, 0] - origin[0]) / cell), tf.int32)
  cell_column = tf.cast(tf.floor((columns[0] - origin[1]) / cell), tf.int32)
  inside = (((cell_row >= 0) & (cell_row < _GLYPH_ROWS))[:, tf.newaxis] &
            ((cell_column >= 0) & (cell_column < _TEXT_COLUMNS))[tf.newaxis, :])
  lit = tf.gather(tf.gather(glyph_cells, tf.clip_by_value(cell_row, 0, _GLYPH_ROWS - 1)),
                  tf.clip_by_value(cell_column, 0, _TEXT_COLUMNS - 1), axis=1)
  return tf.cast(inside & lit, tf.float32)
