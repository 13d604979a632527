"""ImageExampleGen on two sites: a class-folder tree and a manifest site without normal."""

import os
import shutil

import pytest

from components.image_example_gen import driver
from components.image_example_gen import executor_test
from contracts import configs
from contracts import features
from dataset import data_audit
from tests.fixtures import synthetic_busi


def _feature(example, key):
  return example.features.feature[key].bytes_list.value[0].decode()


@pytest.fixture(scope='module')
def two_sites(tmp_path_factory):
  base = tmp_path_factory.mktemp('sites')
  busi = synthetic_busi.write_dataset(str(base / 'busi'), per_class=6)
  bra = synthetic_busi.write_manifest_dataset(str(base / 'bra'), patients_per_class=4)
  # The same bytes at both sites: one scan, whichever site filed it.
  shutil.copy(os.path.join(busi, 'benign', 'benign (1).png'),
              os.path.join(bra, 'images', 'copy.png'))
  with open(os.path.join(bra, 'manifest.csv'), 'a') as f:
    f.write('images/copy.png,benign,,b900,Scanner A\n')
  # The radiologist's reading: malignant scans 5, benign 3, the copy none.
  with open(os.path.join(bra, 'manifest.csv')) as f:
    header, *rows = f.read().splitlines()
  with open(os.path.join(bra, 'manifest.csv'), 'w') as f:
    f.write('\n'.join([header + ',BIRADS'] + [
        row + (',' if 'copy' in row else ',5' if ',malignant,' in row else ',3')
        for row in rows]) + '\n')
  sites = (configs.Site('busi', busi),
           configs.Site('bra', bra, configs.ManifestColumns(birads='BIRADS')))
  out = executor_test.run_executor(
      f'busi={busi};bra={bra}', str(base / 'examples'), sites=sites)
  return {'sites': sites, 'examples': executor_test.read_examples(out),
          'audit': data_audit.read(out)}


def test_examples_carry_site_device_and_patient_under_site_prefixed_names(two_sites):
  examples = two_sites['examples']
  assert len(examples) == 18 + 17
  split, example = examples['bra/images/m002-r.png']
  assert (_feature(example, features.SITE_KEY), _feature(example, features.DEVICE_KEY),
          _feature(example, features.PATIENT_KEY)) == ('bra', 'Scanner A', 'm002')
  assert example.features.feature[features.MASK_COUNT_KEY].int64_list.value[0] == 1
  _, folder_example = examples['busi/normal/normal (3).png']
  assert (_feature(folder_example, features.SITE_KEY),
          _feature(folder_example, features.DEVICE_KEY),
          _feature(folder_example, features.PATIENT_KEY)) == ('busi', '', '')


def test_birads_is_recorded_where_the_manifest_gives_it_and_absent_elsewhere(two_sites):
  examples = two_sites['examples']
  def birads(name):
    return list(examples[name][1].features.feature[features.BIRADS_KEY].int64_list.value)
  assert birads('bra/images/m002-r.png') == [5]
  assert birads('bra/images/b001-l.png') == [3]
  assert birads('bra/images/copy.png') == []
  assert birads('busi/normal/normal (3).png') == []


def test_a_patient_stays_in_one_split_and_every_site_reaches_every_split(two_sites):
  examples = two_sites['examples']
  for patient in ('b001', 'b004', 'm001', 'm003'):
    left, right = (examples[f'bra/images/{patient}-{side}.png'] for side in 'lr')
    assert left[0] == right[0]
    assert _feature(left[1], features.GROUP_KEY) == _feature(right[1], features.GROUP_KEY)
  for site in ('busi', 'bra'):
    for label in ('benign', 'malignant'):
      assert {split for name, (split, ex) in examples.items()
              if name.startswith(f'{site}/') and _feature(ex, features.LABEL_KEY) == label
              } == {'train', 'eval', 'test'}


def test_an_exact_copy_across_sites_is_one_group(two_sites):
  examples = two_sites['examples']
  original, copy = examples['busi/benign/benign (1).png'], examples['bra/images/copy.png']
  assert original[0] == copy[0]
  assert _feature(original[1], features.GROUP_KEY) == _feature(copy[1], features.GROUP_KEY)


def test_the_audit_counts_each_site(two_sites):
  audit = two_sites['audit']
  assert set(audit.site_counts) == {'busi', 'bra'}
  bra = audit.site_counts['bra']
  assert (bra.ingested, bra.quarantined, bra.ignored) == (17, 0, 1)
  assert bra.class_counts == {'benign': 9, 'malignant': 8, 'normal': 0}
  assert audit.site_counts['busi'].class_counts == {'benign': 6, 'malignant': 6, 'normal': 6}
  assert sum(c.ingested for c in audit.site_counts.values()) == audit.ingested
  assert 'Sites: bra 17 ingested, 0 quarantined; busi 18 ingested' in (
      data_audit.summary_line(audit))


def test_the_fingerprint_covers_every_site(two_sites):
  sites = two_sites['sites']
  before = driver.sites_fingerprint(sites)
  with open(os.path.join(sites[1].root, 'manifest.csv'), 'a') as f:
    f.write('\n')
  assert driver.sites_fingerprint(sites) != before
