"""The serving contract: what a client sends the exported model and what comes back.

`models/signatures.py` exports it and `predict.py` calls it; docs/serving.md is
the client-facing description.
"""

# Serialized tf.Examples in (TFMA; TF Serving's Predict API: a Predict signature,
# which TF Serving's Classify API refuses, as it wants one input named `inputs`).
SERVING_DEFAULT = 'serving_default'
# Encoded PNG/JPEG bytes in (`{"b64": ...}` over REST); adds the top class.
SERVING_IMAGES = 'serving_images'

# Input names of the two signatures.
EXAMPLES_INPUT = 'examples'
IMAGE_BYTES_INPUT = 'image_bytes'

# Outputs: calibrated probabilities [N, classes], the class names in the order
# of the scores, and (serving_images only) the most probable class.
SCORES_OUTPUT = 'scores'
CLASSES_OUTPUT = 'classes'
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

# TF Serving's model config beside the model base directory
# (serving/serving_config.py) and the version labels it gives: clients ask
# /labels/stable or /labels/canary.
MODELS_CONFIG_FILE = 'models.config'
STABLE_LABEL = 'stable'
CANARY_LABEL = 'canary'
