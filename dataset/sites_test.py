"""Sites in the DataConfig: one plain default site stays the bare data root."""

import pytest

from contracts import configs
from dataset import sites


def test_one_plain_default_site_stays_the_data_root():
  data = configs.DataConfig(splits=(6, 2, 2))
  plain = sites.with_sites(data, (configs.Site(configs.DEFAULT_SITE, '/a'),))
  assert (plain.data_root, plain.sites, plain.splits) == ('/a', (), (6, 2, 2))
  named = (configs.Site('busi', '/a'),)
  assert sites.with_sites(data, named) == configs.DataConfig(splits=(6, 2, 2), sites=named)


def test_the_config_refuses_repeated_names_and_mixed_roots():
  site = configs.Site('a', '/a')
  with pytest.raises(configs.ConfigError, match='distinct names'):
    configs.DataConfig(sites=(site, site))
  with pytest.raises(configs.ConfigError, match='exclude each other'):
    configs.DataConfig(data_root='/b', sites=(site,))
  with pytest.raises(configs.ConfigError, match='lower-case'):
    configs.Site('A', '/a')
