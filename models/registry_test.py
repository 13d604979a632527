"""The registry: every family builds, and callers get its settings from its spec."""

import pytest

from contracts import configs
from contracts import features
from models import model as model_lib
from models import registry

_SIZE = 32


@pytest.mark.parametrize('name', registry.MODEL_CHOICES)
def test_every_family_builds_a_classifier_of_the_transformed_image(name):
  spec = registry.spec(name)
  training_models, serving_model = registry.build_model(
      configs.ModelConfig(name=name, image_size=_SIZE), len(features.CLASS_NAMES))
  assert serving_model.input_names == [features.IMAGE_XF]
  assert serving_model.output_shape == (None, len(features.CLASS_NAMES))
  [training_model] = training_models
  has_mask_output = model_lib.MASK_OUTPUT in training_model.output_names
  assert has_mask_output == spec.has_mask_head


def test_the_seed_cnn_keeps_the_notebooks_input_size_and_the_others_the_default():
  assert registry.spec('seed_cnn').image_size == 180
  others = [name for name in registry.MODEL_CHOICES if name != 'seed_cnn']
  assert {registry.spec(name).image_size for name in others} == {
      configs.ModelConfig().image_size}


def test_an_unknown_family_names_the_choices():
  with pytest.raises(ValueError, match="Unknown model 'resnet'; choose one of busi_net"):
    registry.spec('resnet')


def test_only_families_that_ensemble_take_more_than_one_member():
  assert registry.ENSEMBLE_MODELS == ('busi_net',)
  with pytest.raises(ValueError, match='ensemble_size must be 1 for seed_cnn'):
    registry.build_model(configs.ModelConfig(name='seed_cnn', ensemble_size=2), 3)
