"""The data contract: the classes, and the features raw (written by
ImageExampleGen) and transformed.

The schema in `schema/schema.pbtxt`, the ExampleGen, `preprocessing_fn`, the
model and the serving signatures all refer to features through these names.
"""

import re
from typing import Tuple

# The class order fixes the label indices and the order of `scores` in serving.
CLASS_NAMES: Tuple[str, ...] = ('benign', 'malignant', 'normal')
MALIGNANT_CLASS = 'malignant'
# Its scans show no lesion, so its masks are black by design.
NORMAL_CLASS = 'normal'

# BUSI keeps each scan's lesion masks beside it, as `<name>_mask.png`,
# `<name>_mask_1.png`, ...: matched whole against the file name without its
# extension (DOTALL: a name with a newline is still recognised as a mask).
MASK_NAME_PATTERN = re.compile(r'(?P<stem>.+)_mask(_\d+)?', re.IGNORECASE | re.DOTALL)

# Raw features in each tf.Example.
IMAGE_KEY = 'image'              # encoded PNG/JPEG bytes, as found on disk
LABEL_KEY = 'label'              # class folder name: benign, malignant or normal
FILENAME_KEY = 'filename'        # path relative to the data root, after its site's name
                                 # when the run names its sites
HEIGHT_KEY = 'height'
WIDTH_KEY = 'width'
SHA256_KEY = 'sha256'            # hex digest of the image file's bytes
PHASH_KEY = 'dhash'              # 64-bit perceptual (difference) hash, hex
GROUP_KEY = 'group_id'           # near-duplicate group; a group stays in one split
MASK_KEY = 'mask'                # PNG: union of the image's lesion masks
MASK_COUNT_KEY = 'mask_count'    # how many mask files were merged (0: none)
SITE_KEY = 'site'                # the named data root (hospital) the image came from
DEVICE_KEY = 'device'            # the scanner, as the site names it; '' when unknown
PATIENT_KEY = 'patient_id'       # the patient (or study) id; '' when unknown
BIRADS_KEY = 'birads'            # the radiologist's BI-RADS category 0-6; no value when unknown
INTENSITY_MEAN_KEY = 'intensity_mean'      # mean 8-bit grey level (dataset/intensity.py)
INTENSITY_SPREAD_KEY = 'intensity_spread'  # standard deviation of the grey levels
DARK_FRACTION_KEY = 'dark_fraction'        # share of near-black pixels

# Transformed features, produced by `preprocessing_fn`.
IMAGE_XF = 'image_xf'            # float32 [size, size, 1], intensities in [0, 1]
MASK_XF = 'mask_xf'              # float32 [size, size, 1], 0 or 1
LABEL_XF = 'label_xf'            # int64 index into CLASS_NAMES
SITE_XF = 'site_xf'              # bytes: the site, passed through for per-site operating points
