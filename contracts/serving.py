"""The serving contract: what a client sends the exported model and what comes back.

`models/signatures.py` exports it and `predict.py` calls it; docs/serving.md is
the client-facing description.
"""

# Serialized tf.Examples in (TFMA; TF Serving's Predict API: a Predict signature,
# which TF Serving's Classify API refuses, as it wants one input named `inputs`).
SERVING_DEFAULT = 'serving_default'
# Encoded PNG/JPEG bytes in (`{"b64": ...}` over REST); adds the decided class.
SERVING_IMAGES = 'serving_images'

# Input names of the two signatures.
EXAMPLES_INPUT = 'examples'
IMAGE_BYTES_INPUT = 'image_bytes'

# Outputs of both signatures: calibrated probabilities [N, classes], the class
# names in the order of the scores (as TF Serving's and TFMA's `scores` and
# `classes`), the clinical decision at the malignant operating point [N]
# (contracts/operating_point.py: `refer`, else the more probable of the other
# classes) and the malignant threshold it used [N], and whether the model is
# not sure of the scan [N] (models/not_sure.py): a flagged scan is to be read
# by a radiologist, whatever its decision. serving_images also returns the
# class of that decision as `label` (`malignant` for `refer`).
SCORES_OUTPUT = 'scores'
CLASSES_OUTPUT = 'classes'
DECISION_OUTPUT = 'decision'
THRESHOLD_OUTPUT = 'malignant_threshold'
NOT_SURE_OUTPUT = 'not_sure'
LABEL_OUTPUT = 'label'

# Files the model reads, by extension, case-insensitive.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')

# The file that makes a folder a SavedModel.
SAVED_MODEL_FILE = 'saved_model.pb'

# Beside the SavedModel in every pushed version: TF Serving's warm-up requests
# (models/warmup.py) and the model card (serving/model_card.py), for tools
# and for people.
ASSETS_EXTRA = 'assets.extra'
WARMUP_FILE = 'tf_serving_warmup_requests'
MODEL_CARD_JSON_FILE = 'model_card.json'
MODEL_CARD_MARKDOWN_FILE = 'model_card.md'
# The Trainer's malignant operating point (contracts/operating_point.py), beside
# the SavedModel it was chosen for.
OPERATING_POINT_FILE = 'operating_point.json'

# TF Serving's model config beside the model base directory
# (serving/serving_config.py) and the version labels it gives: clients ask
# /labels/stable or /labels/canary.
MODELS_CONFIG_FILE = 'models.config'
STABLE_LABEL = 'stable'
CANARY_LABEL = 'canary'
