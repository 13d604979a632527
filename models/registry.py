"""The model families, one `ModelSpec` each: everything that differs between them.

Callers look a family up here instead of testing its name, so adding a model is
one new module with its builder and one entry in `_SPECS`.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import tf_keras as keras

from contracts import configs
from models import compiling
from models import lesion_net
from models import model as model_lib

# (training model, serving model): the serving one may have fewer outputs.
Builder = Callable[[configs.ModelConfig, int], Tuple[keras.Model, keras.Model]]
# Compiles a training model for this many optimizer steps; returns the metric
# early stopping watches.
Compiler = Callable[[keras.Model, configs.TrainingConfig, int], str]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """One model family, as training, serving and the runners need to know it."""
  name: str
  build: Builder
  compile: Compiler
  # The input side a run uses when none is given.
  image_size: int
  # The epochs a run trains for when none is given: the family's recipe
  # (bench/README.md has the comparisons behind each).
  epochs: int
  # Augmented in the input pipeline, where the lesion mask follows the image;
  # False: the network augments inside itself (the seed notebook's way).
  augments_in_input_pipeline: bool
  # Predicts the lesion mask while training; the mask then is a training target.
  has_mask_head: bool
  # A temperature is fitted on the eval split; False: the scores are the
  # network's softmax as it is.
  calibrated: bool
  # A normal scan's empty mask is a target ("no lesion here", weight 1); False:
  # only images with a non-empty mask teach the mask head. A lesion image with
  # an empty mask is a missing annotation either way and teaches nothing.
  normal_mask_is_target: bool = False
  # The layer whose output Grad-CAM explains; None: the deepest spatial layer
  # (`grad_cam.last_feature_map_layer`). Its map must be in image coordinates.
  explained_layer: Optional[str] = None
  # The input side must be a multiple of this (lesion_net's decoder adds maps
  # of strides 8 to 32, which must halve evenly).
  image_size_multiple: int = 1


def _build_seed_cnn(config: configs.ModelConfig, num_classes: int):
  """Its one network both trains and serves."""
  model = model_lib.build_seed_cnn(config, num_classes)
  return model, model


# lesion_net's: its whole-image pass reads at most `lesion_net.MAX_CONTEXT_SIZE`
# (the cost grows with the square of the side), while the lesion crop is
# resampled from the full input, so the lesion is seen at twice that detail.
_LESION_NET_IMAGE_SIZE = 256


def _build_lesion_net(config: configs.ModelConfig, num_classes: int):
  net = lesion_net.build_lesion_net(
      config.image_size, num_classes, model_lib.CLASS_OUTPUT, model_lib.MASK_OUTPUT,
      context_size=min(config.image_size, lesion_net.MAX_CONTEXT_SIZE),
      dropout=config.dropout)
  return net.training, net.serving


_SPECS: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    # The fast family: a small residual network that reads the whole image
    # once, at 128 px, with a lesion-mask head (models/model.py).
    ModelSpec(name='busi_net',
              build=model_lib.build_busi_net,
              compile=compiling.compile_with_mask_head,
              image_size=128,
              epochs=80,
              augments_in_input_pipeline=True,
              has_mask_head=True,
              calibrated=True),
    # The seed notebook's network, trained and served as the notebook had it,
    # at the notebook's input size.
    ModelSpec(name='seed_cnn',
              build=_build_seed_cnn,
              compile=compiling.compile_seed_cnn,
              image_size=180,
              epochs=15,
              augments_in_input_pipeline=False,
              has_mask_head=False,
              calibrated=False),
    # Finds the lesion with its mask head and classifies a crop of it beside
    # the whole image (models/lesion_net.py); normal scans teach it "no
    # lesion", which widens its crop to the whole image.
    ModelSpec(name='lesion_net',
              build=_build_lesion_net,
              compile=compiling.compile_with_mask_head,
              image_size=_LESION_NET_IMAGE_SIZE,
              epochs=30,
              augments_in_input_pipeline=True,
              has_mask_head=True,
              calibrated=True,
              normal_mask_is_target=True,
              explained_layer=lesion_net.CONTEXT_FEATURE_MAP,
              image_size_multiple=lesion_net.BACKBONE_STRIDE),
)}

MODEL_CHOICES: Tuple[str, ...] = tuple(_SPECS)


def register(model_spec: ModelSpec) -> None:
  """Adds a family for this process (a benchmark's variant of one, say); adding
  the same one again changes nothing."""
  if _SPECS.setdefault(model_spec.name, model_spec) != model_spec:
    raise ValueError(f'Another model family is registered as {model_spec.name!r}')


def spec(name: str) -> ModelSpec:
  """The family called `name`; a ValueError naming the choices otherwise."""
  if name not in _SPECS:
    raise ValueError(f'Unknown model {name!r}; choose one of {", ".join(MODEL_CHOICES)}')
  return _SPECS[name]


def build_model(config: configs.ModelConfig,
                num_classes: int) -> Tuple[keras.Model, keras.Model]:
  """(training model, serving model) of `config.name`; they share every layer."""
  return spec(config.name).build(config, num_classes)
