"""A served version adapted to a site: only its batch-norm statistics change, to the site's."""

import dataclasses
import filecmp
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from contracts import configs
from contracts import features
from contracts import names
from contracts import operating_point as op
from contracts import serving
from models import batch_norm_adaptation
from models import inference
from models import operating_point
from models import registry
from models import signatures
from models import training_loop
from serving import model_card
from serving import site_adaptation
from tests.fixtures import exported_model
from tests.fixtures import synthetic_busi
from tests.serving import model_card_test

import site_threshold

# Exports a model through a Transform run and adapts it.
pytestmark = pytest.mark.integration

# busi_net: batch-norm layers in a plain stack (the suite's seed_cnn has none).
# lesion_net: one backbone for two passes, so its SavedModel stores the
# network's variables under other keys than their layer paths.
_FAMILIES = {'busi_net': configs.ModelConfig(name='busi_net', image_size=32),
             'lesion_net': configs.ModelConfig(name='lesion_net', image_size=64)}


@pytest.fixture(scope='module')
def push(tmp_path_factory):
  """family -> a pushed version of it, with its card and another site's threshold."""
  pushed = {}

  def pushed_version(family: str) -> exported_model.ExportedModel:
    if family not in pushed:
      model_config = _FAMILIES[family]
      work = tmp_path_factory.mktemp(family)
      version_dir = str(work / 'serving' / names.MODEL_NAME / '4')
      exported = exported_model.export_untrained_model(model_config, str(work), version_dir,
                                                       temperature=1.3)
      card = dataclasses.replace(
          model_card_test._card(exported.operating_point), version=4,
          training_config={'model': dataclasses.asdict(model_config),
                           'class_names': list(features.CLASS_NAMES)})
      model_card.write_card(version_dir, card)
      operating_point.write_site(version_dir, dataclasses.replace(
          exported.operating_point, site='elsewhere', split='site_export'))
      pushed[family] = exported
    return pushed[family]

  return pushed_version


@pytest.fixture(scope='module')
def site_scans(tmp_path_factory):
  """A new site's labelled export: its folder and its scans."""
  root = synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('site')), per_class=4)
  return root, sorted(os.path.join(dirpath, name) for dirpath, _, files in os.walk(root)
                      for name in files if '_mask' not in name)


def _served(version_dir, paths):
  signature = tf.saved_model.load(version_dir).signatures[serving.SERVING_IMAGES]
  return signature(**{serving.IMAGE_BYTES_INPUT: tf.constant(
      [open(path, 'rb').read() for path in paths])})


def _scores(version_dir, paths):
  return _served(version_dir, paths)[serving.SCORES_OUTPUT].numpy()


def _sites_point(exported):
  """A stand-in for the site's choice: a threshold no Trainer would pick."""
  return lambda staged: dataclasses.replace(exported.operating_point, threshold=0.4242,
                                            site='clinic', split=op.SITE_EXPORT_SPLIT)


@pytest.mark.parametrize('family', sorted(_FAMILIES))
def test_the_copy_serves_the_network_with_the_sites_statistics(push, family, site_scans,
                                                               tmp_path):
  served, model_config = push(family), _FAMILIES[family]
  _, paths = site_scans
  output = str(tmp_path / 'site_models' / '4')
  adapted = site_adaptation.adapt_version(served.saved_model_dir, 'clinic', paths, output,
                                          _sites_point(served))
  assert (adapted.version_dir, adapted.scans) == (output, len(paths))
  assert adapted.batch_norm_layers == len(
      batch_norm_adaptation.batch_norm_layers(served.keras_model))

  # The same network adapted in memory serves the same scores as the copy.
  _, network = registry.build_model(model_config, len(features.CLASS_NAMES))
  training_loop.restore_network(network,
                                training_loop.warm_start_checkpoint(served.saved_model_dir))
  images = site_adaptation.decode_scans(paths, model_config.image_size)
  batch_norm_adaptation.adapt(network, images)
  expected = inference.class_scores(network, tf.constant(images), served.temperature).numpy()
  np.testing.assert_allclose(_scores(output, paths), expected, rtol=1e-4, atol=1e-5)
  assert not np.allclose(_scores(served.saved_model_dir, paths), expected, atol=1e-3)

  # The copy decides at the site's threshold; the served version at its own.
  copy, original = _served(output, paths), _served(served.saved_model_dir, paths)
  assert np.allclose(copy[serving.THRESHOLD_OUTPUT].numpy(), 0.4242)
  assert np.allclose(original[serving.THRESHOLD_OUTPUT].numpy(),
                     served.operating_point.threshold)
  malignant = copy[serving.SCORES_OUTPUT].numpy()[:, features.CLASS_NAMES.index(
      features.MALIGNANT_CLASS)]
  assert ((copy[serving.DECISION_OUTPUT].numpy() == op.REFER_DECISION.encode())
          == (malignant >= 0.4242)).all()
  assert operating_point.read_sites(output) == {'clinic': adapted.point}

  # Only the statistics and the threshold changed; the served version is untouched.
  kept = tf.train.load_checkpoint(training_loop.warm_start_checkpoint(served.saved_model_dir))
  new = tf.train.load_checkpoint(training_loop.warm_start_checkpoint(output))
  changed = [new.get_tensor(key) for key in kept.get_variable_to_dtype_map()
             if not np.array_equal(kept.get_tensor(key), new.get_tensor(key))]
  statistics = [variable.numpy() for layer in batch_norm_adaptation.batch_norm_layers(network)
                for variable in (layer.moving_mean, layer.moving_variance)]
  statistics.append(np.float32(0.4242))
  assert len(changed) > 1 and all(
      any(value.shape == s.shape and np.allclose(value, s, atol=1e-5) for s in statistics)
      for value in changed)
  assert filecmp.cmp(os.path.join(served.saved_model_dir, serving.SAVED_MODEL_FILE),
                     os.path.join(output, serving.SAVED_MODEL_FILE), shallow=False)
  card = model_card.read_card(output)
  assert (card.adapted_to_site, card.site_thresholds) == ('clinic', {})
  assert 'Adapted to site `clinic`' in open(os.path.join(
      output, serving.ASSETS_EXTRA, serving.MODEL_CARD_MARKDOWN_FILE)).read()
  assert set(operating_point.read_sites(served.saved_model_dir)) == {'elsewhere'}

  with pytest.raises(site_adaptation.AdaptationError, match='exists already'):
    site_adaptation.adapt_version(served.saved_model_dir, 'clinic', paths, output,
                                  _sites_point(served))


def test_a_copy_published_meanwhile_is_not_overwritten(push, site_scans, tmp_path,
                                                       monkeypatch):
  served = push('busi_net')
  _, paths = site_scans
  output = tmp_path / 'site_models' / '4'
  decode = site_adaptation.decode_scans

  def another_command_publishes_first(*args):
    output.mkdir(parents=True)
    (output / 'theirs').write_text('kept')
    return decode(*args)

  monkeypatch.setattr(site_adaptation, 'decode_scans', another_command_publishes_first)
  with pytest.raises(site_adaptation.AdaptationError, match='exists already'):
    site_adaptation.adapt_version(served.saved_model_dir, 'clinic', paths, str(output),
                                  _sites_point(served))
  assert sorted(os.listdir(output)) == ['theirs']
  assert os.listdir(output.parent) == ['4']


def test_site_threshold_adapts_then_sets_the_threshold_on_the_copy(
    push, site_scans, tmp_path, capsys):
  served = push('busi_net')
  root, paths = site_scans
  output = str(tmp_path / 'clinic' / '4')
  argv = ['--site', 'clinic', '--data-root', f'clinic={root}', '--model-dir',
          served.saved_model_dir, '--adapt', '--adapted-model-dir', output]
  assert site_threshold.main(argv) == 0
  out, _ = capsys.readouterr()
  assert out.startswith(f'{output}: adapted to site clinic (')
  assert set(operating_point.read_sites(output)) == {'clinic'}
  assert 'clinic' not in operating_point.read_sites(served.saved_model_dir)
  threshold = operating_point.read_sites(output)['clinic'].threshold
  assert np.allclose(_served(output, paths)[serving.THRESHOLD_OUTPUT].numpy(), threshold)

  assert site_threshold.main(argv) == 2
  _, err = capsys.readouterr()
  assert err.count('\n') == 1 and 'exists already' in err and '--replace' in err
  assert site_threshold.main([*argv, '--replace']) == 0
  _, err = capsys.readouterr()
  assert f'replaced: {output}' in err
  # Replaced by one rename of a folder staged under its own name: nothing is left beside it.
  assert os.listdir(os.path.dirname(output)) == ['4']


def test_a_version_without_a_card_cannot_be_adapted(push, site_scans, tmp_path, capsys):
  served = push('busi_net')
  root, _ = site_scans
  bare = str(tmp_path / 'bare')
  shutil.copytree(served.saved_model_dir, bare)
  os.remove(os.path.join(bare, serving.ASSETS_EXTRA, serving.MODEL_CARD_JSON_FILE))
  assert site_threshold.main(['--site', 'clinic', '--data-root', f'clinic={root}',
                              '--model-dir', bare, '--adapt',
                              '--adapted-model-dir', str(tmp_path / 'out')]) == 2
  _, err = capsys.readouterr()
  assert err.splitlines()[-1] == (f'site_threshold: error: {bare} cannot be adapted: {bare} '
                                  'has no model card to say which network it holds')
  assert not os.path.exists(tmp_path / 'out')


def test_a_version_deciding_at_a_graph_constant_cannot_be_adapted(push, site_scans, tmp_path,
                                                                  monkeypatch):
  served = push('busi_net')
  _, paths = site_scans
  monkeypatch.setattr(signatures, 'THRESHOLD_VARIABLE', 'not_in_this_version')
  with pytest.raises(site_adaptation.AdaptationError,
                     match="threshold as a constant of its graph"):
    site_adaptation.adapt_version(served.saved_model_dir, 'clinic', paths,
                                  str(tmp_path / 'out'), _sites_point(served))
  assert not os.path.exists(tmp_path / 'out')


def test_a_scan_the_model_cannot_read_is_named(tmp_path):
  damaged = tmp_path / 'damaged.png'
  damaged.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
  with pytest.raises(site_adaptation.AdaptationError, match=f'{damaged}: Invalid image'):
    site_adaptation.decode_scans([str(damaged)], 32)
