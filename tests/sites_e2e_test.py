"""local_runner.py on two named sites: a class-folder tree and a manifest site without normal.

The whole pipeline runs (seed_cnn, one epoch, 32 px): the examples carry the
site, device and patient; the schema accepts them; Transform and Trainer pass
them by; the audit and the run report break the counts down by site.
"""

import glob
import os
import re

import pytest
import tensorflow as tf

import local_runner
from contracts import features
from contracts import names
from dataset import data_audit
from tests.fixtures import synthetic_busi

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def two_sites(tmp_path_factory):
  root = tmp_path_factory.mktemp('sites_e2e')
  return {'busi': synthetic_busi.write_dataset(str(root / 'busi'), per_class=8),
          'bra': synthetic_busi.write_manifest_dataset(str(root / 'bra'),
                                                       patients_per_class=5),
          'out': str(root / 'out')}


def _latest_examples(out):
  (uri,) = glob.glob(os.path.join(out, 'tfx', names.EXAMPLE_GEN, 'examples', '*'))
  return uri


def test_a_two_site_run_ends_to_end_with_site_features_and_per_site_counts(two_sites, capsys):
  assert local_runner.main([
      '--data-root', f'busi={two_sites["busi"]}', '--data-root', f'bra={two_sites["bra"]}',
      '--output-dir', two_sites['out'], '--epochs', '1', '--model', 'seed_cnn',
      '--image-size', '32', '--beam-workers', '1',
      '--min-accuracy', '0', '--min-malignant-recall', '0']) == 0
  summary = capsys.readouterr().out
  assert 'Blessed: yes' in summary
  # The summary's per-site table: a row per site; bra has no normal scans, so its
  # normal recall is undefined, shown as n/a.
  site_rows = {line.split()[0]: line.split() for line in summary.splitlines()
               if line.split() and line.split()[0] in ('busi', 'bra')}
  assert set(site_rows) == {'busi', 'bra'}
  assert 'n/a' in site_rows['bra'] and not re.search(r'\bnan\b', summary, re.IGNORECASE)
  uri = _latest_examples(two_sites['out'])
  audit = data_audit.read(uri)
  assert audit.data_root == f'busi={two_sites["busi"]};bra={two_sites["bra"]}'
  assert {site: c.ingested for site, c in audit.site_counts.items()} == {
      'busi': 24, 'bra': 20}
  assert audit.site_counts['bra'].class_counts['normal'] == 0
  seen = set()
  for split in ('train', 'eval', 'test'):
    for record in tf.data.TFRecordDataset(glob.glob(os.path.join(uri, f'Split-{split}', '*'))):
      feature = tf.train.Example.FromString(record.numpy()).features.feature
      seen.add(tuple(feature[key].bytes_list.value[0].decode() != '' for key in (
          features.SITE_KEY, features.DEVICE_KEY, features.PATIENT_KEY))
               + (feature[features.SITE_KEY].bytes_list.value[0].decode(),))
  assert seen == {(True, False, False, 'busi'), (True, True, True, 'bra')}
  (report,) = glob.glob(os.path.join(two_sites['out'], 'reports', '*.html'))
  page = open(report, encoding='utf-8').read()
  assert '<h4>Images per site</h4>' in page


def test_a_bad_site_name_is_a_usage_error(two_sites, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.main(['--data-root', f'BUSI={two_sites["busi"]}'])
  assert exit_info.value.code == 2
  assert "--data-root 'BUSI=" in capsys.readouterr().err


def test_a_bus_bra_export_without_its_columns_is_told_which_to_pass(tmp_path, capsys):
  export = tmp_path / 'bus_bra'
  (export / 'Images').mkdir(parents=True)
  (export / 'bus_data.csv').write_text('ID,Case,Pathology,Device\n')
  assert local_runner.main(['--data-root', f'bra={export}',
                            '--output-dir', str(tmp_path / 'out')]) == 2
  assert capsys.readouterr().err.strip() == (
      f'--data-root: site bra: data root {export} holds no class folder (benign, '
      'malignant, normal) and no manifest.csv, but bus_data.csv: pass '
      '--manifest-columns bra=bus_bra.')
