"""Training on a manifest site's split and testing on its test split and on another site."""

import json

from bench import cross_site_test
from bench import leave_site_out
from tests.fixtures import synthetic_busi


def test_one_epoch_gives_the_in_site_row_with_birads_and_the_other_site_row(tmp_path):
  pathologies = ['benign', 'malignant'] * 12
  bra = cross_site_test.write_manifest_site(
      str(tmp_path / 'bra'), pathologies,
      birads=[3 if p == 'benign' else 5 for p in pathologies])
  busi = synthetic_busi.write_dataset(str(tmp_path / 'busi'), per_class=3)
  output = str(tmp_path / 'rows.json')
  assert leave_site_out.main(['--train-site', f'bra={bra}', '--test-site', f'busi={busi}',
                              '--model', 'seed_cnn', '--epochs', '1',
                              '--output', output]) == 0
  with open(output) as f:
    result = json.load(f)
  in_site, other = result['rows']
  assert sum(result['split_sizes'].values()) == 24
  assert (in_site['tested_on'], in_site['scans']) == ('bra', 'test split')
  assert in_site['overall']['scans'] == result['split_sizes']['test']
  # BI-RADS 5 for every cancer and 3 for every benign scan: a perfect radiologist.
  assert in_site['radiologist']['birads_auc'] == 1.0
  assert (other['tested_on'], other['scans'], other['overall']['scans']) == ('busi', 'all', 6)
  assert other['radiologist'] is None
  assert in_site['threshold'] == other['threshold'] == result['operating_point']['threshold']
