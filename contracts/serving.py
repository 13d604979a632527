"""The serving contract: what a client sends the exported model and what comes back.

`models/signatures.py` exports it and `predict.py` calls it; docs/serving.md is
the client-facing description.
"""

# Serialized tf.Examples in (TFMA, TF Serving's Classify/Predict APIs).
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
