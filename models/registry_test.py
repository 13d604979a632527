"""The registry: every family builds, and callers get its settings from its spec."""

import dataclasses

import numpy as np
import pytest

from contracts import configs
from contracts import features
from models import efficientnet_lite
from models import model as model_lib
from models import registry
from models import torch_legacy_checkpoint

_SIZE = 32


@pytest.mark.parametrize('name', registry.MODEL_CHOICES)
def test_every_family_builds_a_classifier_of_the_transformed_image(name):
  spec = registry.spec(name)
  training_model, serving_model = registry.build_model(
      configs.ModelConfig(name=name, image_size=_SIZE), len(features.CLASS_NAMES))
  assert serving_model.input_names == [features.IMAGE_XF]
  assert serving_model.output_shape == (None, len(features.CLASS_NAMES))
  has_mask_output = model_lib.MASK_OUTPUT in training_model.output_names
  assert has_mask_output == spec.has_mask_head


def test_the_seed_cnn_keeps_the_notebooks_recipe():
  assert (registry.spec('seed_cnn').image_size, registry.spec('seed_cnn').epochs) == (180, 15)


def test_the_config_defaults_are_the_default_familys_recipe():
  default = registry.spec(configs.ModelConfig.name)
  assert default.image_size == configs.ModelConfig.image_size
  assert default.epochs == configs.TrainingConfig.epochs


@pytest.mark.parametrize('name', registry.MODEL_CHOICES)
def test_every_familys_input_side_suits_it(name):
  spec = registry.spec(name)
  assert spec.image_size % spec.image_size_multiple == 0 and spec.epochs >= 1


def test_an_unknown_family_names_the_choices():
  with pytest.raises(ValueError,
                     match="Unknown model 'resnet'; choose one of busi_net, seed_cnn, lesion_net"):
    registry.spec('resnet')


def test_lesion_net_starts_from_the_installed_imagenet_weights():
  _, serving_model = registry.build_model(
      configs.ModelConfig(name='lesion_net', image_size=_SIZE), len(features.CLASS_NAMES))
  state = torch_legacy_checkpoint.read_state_dict(efficientnet_lite.imagenet_weights_path())
  [head] = [w for w in serving_model.weights if 'head_conv' in w.name]
  np.testing.assert_array_equal(head.numpy(),
                                state['_conv_head.weight'].transpose(2, 3, 1, 0))
  [moving_mean] = [w for w in serving_model.weights
                   if 'block15_project_bn' in w.name and 'moving_mean' in w.name]
  np.testing.assert_array_equal(moving_mean.numpy(), state['_blocks.15._bn2.running_mean'])


def test_only_lesion_net_learns_no_lesion_from_normal_scans():
  assert [name for name in registry.MODEL_CHOICES
          if registry.spec(name).normal_mask_is_target] == ['lesion_net']
  assert all(registry.spec(name).has_mask_head for name in registry.MODEL_CHOICES
             if registry.spec(name).normal_mask_is_target)


def test_a_registered_variant_is_found_by_name_and_cannot_be_replaced():
  variant = dataclasses.replace(registry.spec('busi_net'), name='busi_net_variant', epochs=1)
  registry.register(variant)
  registry.register(variant)
  assert registry.spec('busi_net_variant') == variant
  assert 'busi_net_variant' not in registry.MODEL_CHOICES
  with pytest.raises(ValueError, match='busi_net_variant'):
    registry.register(dataclasses.replace(variant, epochs=2))
