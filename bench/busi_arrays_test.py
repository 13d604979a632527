"""Loading a BUSI-like folder and splitting it like the pipeline does."""

import os
import shutil

import numpy as np
import pytest

from bench import busi_arrays
from components.image_example_gen import executor_test
from contracts import configs
from contracts import features
from tests.fixtures import synthetic_busi


@pytest.fixture(scope='module')
def data_config(tmp_path_factory):
  root = synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('busi')), per_class=10)
  return configs.DataConfig(data_root=root)


@pytest.fixture(scope='module')
def images(data_config):
  return busi_arrays.load(data_config, image_size=24)


def test_load_decodes_images_masks_and_labels(images):
  assert images.images.shape == images.masks.shape == (30, 24, 24, 1)
  assert np.bincount(images.labels).tolist() == [10, 10, 10]
  lesions = images.masks.reshape(30, -1).max(axis=1)
  np.testing.assert_array_equal(lesions, images.labels != 2)  # normal scans: no lesion
  example = next(iter(images.dataset()))
  assert set(example) == {features.IMAGE_XF, features.MASK_XF, features.LABEL_XF}


def test_load_leaves_out_label_conflicts_like_the_pipeline(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path), per_class=4)
  shutil.copy(os.path.join(root, 'benign', 'benign (1).png'),
              os.path.join(root, 'malignant', 'malignant (99).png'))
  images = busi_arrays.load(configs.DataConfig(data_root=root), image_size=24)
  assert len(images.relpaths) == 11
  assert not {'benign/benign (1).png', 'malignant/malignant (99).png'} & set(images.relpaths)


def test_pipeline_split_partitions_the_images(images, data_config):
  split = busi_arrays.pipeline_split(images, data_config)
  together = np.sort(np.concatenate(list(split.values())))
  np.testing.assert_array_equal(together, np.arange(30))
  assert split['train'].size > split['eval'].size > 0


def test_folds_rotate_test_and_eval_and_keep_groups_whole(images, data_config):
  folds = busi_arrays.cross_validation_folds(images, data_config, 3)
  tests = np.sort(np.concatenate([f['test'] for f in folds]))
  np.testing.assert_array_equal(tests, np.arange(30))
  groups = np.array(images.groups)
  for fold in folds:
    sides = [set(groups[fold[name]]) for name in ('train', 'eval', 'test')]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_too_few_folds_is_a_clear_error(images, data_config):
  with pytest.raises(ValueError, match='--folds must be at least 3'):
    busi_arrays.cross_validation_folds(images, data_config, 2)


def test_a_manifest_site_is_split_as_imageexamplegen_splits_a_run_of_it(tmp_path):
  # A site alone needs every class in every split to pass ImageExampleGen's audit.
  root = synthetic_busi.write_manifest_dataset(str(tmp_path / 'bra'), patients_per_class=6,
                                               classes=features.CLASS_NAMES)
  site = configs.Site('bra', root)
  # The executor test's split sizes.
  data = configs.DataConfig(splits=configs.SplitConfig(60, 20, 20))
  images, split = busi_arrays.load_site(site, data, image_size=24)
  assert images.images.shape == (36, 24, 24, 1) and images.relpaths[0].startswith('bra/')
  ours = {images.relpaths[i]: name for name, ix in split.items() for i in ix}
  written = executor_test.read_examples(executor_test.run_executor(
      f'bra={root}', str(tmp_path / 'examples'), sites=(site,)))
  assert ours == {name: split_name for name, (split_name, _) in written.items()}
