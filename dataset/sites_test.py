"""`--data-root [NAME=]PATH` and `--manifest-columns`: every mistake is one clear line."""

import json

import pytest

from contracts import configs
from dataset import sites


def test_named_and_bare_roots_become_sites_in_order():
  assert sites.parse_site_specs(['busi=/a', '/data/b', 'bus_bra=/c']) == [
      ('busi', '/a'), ('default', '/data/b'), ('bus_bra', '/c')]
  # '=' inside a folder name is a bare path, not a site name.
  assert sites.parse_site_spec('/data/run=3') == ('default', '/data/run=3')


@pytest.mark.parametrize('specs, message', [
    (['Busi=/a'], "--data-root 'Busi=/a': site names are lower-case letters, digits and _"),
    (['bus-bra=/a'], "--data-root 'bus-bra=/a': site names are lower-case"),
    (['busi='], "--data-root 'busi=': site 'busi' needs a folder after ="),
    ([''], '--data-root needs a folder, got an empty value'),
    (['busi=/a', 'busi=/b'], "--data-root: site 'busi' given twice ('busi=/a' and 'busi=/b')"),
    (['/a', '/b'], "--data-root: site 'default' given twice ('/a' and '/b'); a bare folder "
                   "is the site 'default', name the others NAME=PATH"),
])
def test_bad_site_specs_are_one_line(specs, message):
  with pytest.raises(sites.SiteSpecError) as raised:
    sites.parse_site_specs(specs)
  assert str(raised.value).startswith(message)


def test_columns_come_from_a_preset_or_a_json_file(tmp_path):
  path = tmp_path / 'columns.json'
  path.write_text(json.dumps({'manifest': 'export.csv', 'label': 'Diagnosis'}))
  built = sites.build_sites(['a=/a', 'b=/b', 'c=/c'], ['b=bus_bra', f'c={path}'])
  assert [s.columns for s in built] == [
      configs.ManifestColumns(), configs.MANIFEST_PRESETS['bus_bra'],
      configs.ManifestColumns(manifest='export.csv', label='Diagnosis')]


@pytest.mark.parametrize('columns, message', [
    (['x=bus_bra'], "--manifest-columns 'x=bus_bra': no --data-root names site 'x' (sites: a)"),
    (['a'], '--manifest-columns takes NAME=PRESET or NAME=FILE.json (presets: default, bus_bra)'),
    (['a=busbra'], "--manifest-columns 'a=busbra': 'busbra' is neither a preset"),
    (['a=/no/such.json'], "--manifest-columns 'a=/no/such.json': cannot read /no/such.json"),
    (['a=bus_bra', 'a=default'], "--manifest-columns: site 'a' given columns twice"),
])
def test_bad_columns_specs_are_one_line(columns, message):
  with pytest.raises(sites.SiteSpecError) as raised:
    sites.build_sites(['a=/a'], columns)
  assert str(raised.value).startswith(message)


def test_a_columns_file_with_an_unknown_field_names_it(tmp_path):
  path = tmp_path / 'columns.json'
  path.write_text(json.dumps({'labels': 'Diagnosis'}))
  with pytest.raises(sites.SiteSpecError, match='has no field labels'):
    sites.build_sites(['a=/a'], [f'a={path}'])


def test_one_plain_default_site_stays_the_data_root():
  data = configs.DataConfig(splits=(6, 2, 2))
  plain = sites.with_sites(data, sites.build_sites(['/a'], []))
  assert (plain.data_root, plain.sites, plain.splits) == ('/a', (), (6, 2, 2))
  named = sites.build_sites(['busi=/a'], [])
  assert sites.with_sites(data, named) == configs.DataConfig(splits=(6, 2, 2), sites=named)


def test_the_config_refuses_repeated_names_and_mixed_roots():
  site = configs.Site('a', '/a')
  with pytest.raises(configs.ConfigError, match='distinct names'):
    configs.DataConfig(sites=(site, site))
  with pytest.raises(configs.ConfigError, match='exclude each other'):
    configs.DataConfig(data_root='/b', sites=(site,))
  with pytest.raises(configs.ConfigError, match='lower-case'):
    configs.Site('A', '/a')
