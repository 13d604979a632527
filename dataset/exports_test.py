"""Dated exports: which are read, their layout problems, and an image sent twice."""

import os
import re
import shutil

import pytest

from contracts import configs
from dataset import exports
from dataset import image_files
from dataset import sites
from tests.fixtures import synthetic_busi

_CLASSES = synthetic_busi.CLASSES


def _site(tmp_path, *names, per_class=2):
  root = tmp_path / 'site'
  for n, name in enumerate(names):
    synthetic_busi.write_dataset(str(root / 'exports' / name), per_class=per_class, seed=n)
  return configs.Site('busi', str(root))


def test_a_run_reads_every_export_or_the_newest_n_oldest_first(tmp_path):
  site = _site(tmp_path, '2026-12', '2026-11', '2027-01-15')
  assert exports.chosen(site.root, 0) == ['2026-11', '2026-12', '2027-01-15']
  assert exports.chosen(site.root, 2) == ['2026-12', '2027-01-15']
  assert exports.chosen(site.root, 5) == ['2026-11', '2026-12', '2027-01-15']
  assert sites.layout_problem(site, _CLASSES, 2) is None

  scan = sites.scan(site, _CLASSES, 2)
  assert len(scan.images) == 12
  assert {exports.export_of(i.relpath) for i in scan.images} == {'2026-12', '2027-01-15'}
  assert 'exports/2026-12/benign/benign (1).png' in {i.relpath for i in scan.images}
  assert ([(e.file, e.reason) for e in scan.ignored if e.file.startswith('exports/2026-11')]
          == [('exports/2026-11', 'older than the newest 2 exports read '
                                  '(--newest-exports 2)')])


def test_files_beside_the_exports_are_listed_as_not_read(tmp_path):
  site = _site(tmp_path, '2026-11')
  (tmp_path / 'site' / 'README.txt').write_text('monthly exports')
  (tmp_path / 'site' / 'exports' / 'notes.txt').write_text('sent by PACS')
  assert sites.layout_problem(site, _CLASSES) is None
  assert [(e.file, e.reason) for e in sites.scan(site, _CLASSES).ignored] == [
      ('README.txt', 'beside exports/: only the dated exports are read'),
      ('exports/notes.txt', 'not a dated export: not read')]


def test_the_export_of_a_run_level_name():
  assert exports.export_of('exports/2026-11/benign/a.png') == '2026-11'
  assert exports.export_of('bus_bra/exports/2026-11-02/Images/a.png') == 'bus_bra/2026-11-02'
  assert exports.export_of('busi/benign/a.png') == ''
  assert exports.counts(['a/exports/2026-12/x.png', 'a/exports/2026-11/y.png',
                         'a/exports/2026-11/z.png', 'b/benign/w.png']) == {
                             'a/2026-11': 2, 'a/2026-12': 1}


@pytest.mark.parametrize('make, expected', [
    (lambda root: os.makedirs(root / 'exports' / 'latest'),
     r'exports/latest is not named as a dated export \(YYYY-MM or YYYY-MM-DD'),
    (lambda root: os.makedirs(root / 'exports' / '2026-13'),
     r'exports/2026-13 is not named as a dated export'),
    (lambda root: os.makedirs(root / 'benign'),
     r'holds exports/ and also benign: move them into a dated export'),
    (lambda root: (root / 'manifest.csv').write_text('image,label\n'),
     r'holds exports/ and also manifest.csv'),
    (lambda root: os.symlink(root / 'exports' / '2026-11', root / 'exports' / '2026-12'),
     r'exports/2026-12 is a symbolic link'),
])
def test_a_bad_export_layout_is_one_line(tmp_path, make, expected):
  site = _site(tmp_path, '2026-11')
  make(tmp_path / 'site')
  problem = sites.layout_problem(site, _CLASSES)
  assert problem and '\n' not in problem
  assert re.search(expected, problem), problem


def test_an_export_is_checked_as_a_site_and_an_empty_exports_folder_is_refused(tmp_path):
  site = _site(tmp_path, '2026-11')
  os.makedirs(os.path.join(site.root, 'exports', '2026-12', 'Benign'))
  assert sites.layout_problem(site, _CLASSES) == (
      "export 2026-12: found folder 'Benign' in "
      f"{site.root}/exports/2026-12; class folders must be named exactly benign/, "
      "malignant/, normal/ (lower case, no spaces): rename 'Benign' to 'benign'")
  shutil.rmtree(os.path.join(site.root, 'exports'))
  os.makedirs(os.path.join(site.root, 'exports'))
  assert sites.layout_problem(site, _CLASSES) == (
      f'{site.root}/exports holds no dated export (a folder named YYYY-MM or YYYY-MM-DD)')


def _fp(relpath, sha, label='benign', site='busi'):
  return image_files.ImageFingerprint(relpath, label, sha, 0, 1, 1, (), site=site)


def test_an_image_sent_again_by_a_later_export_is_read_once_from_the_earliest():
  kept, repeated = exports.first_copies([
      _fp('busi/exports/2026-12/benign/again.png', 'a'),
      _fp('busi/exports/2026-11/benign/first.png', 'a'),
      _fp('busi/exports/2026-11/benign/twin.png', 'a'),       # same export: left to groups
      _fp('busi/exports/2026-12/malignant/relabelled.png', 'a', 'malignant'),
      _fp('bra/exports/2026-12/benign/other_site.png', 'a', site='bra'),
  ])
  assert sorted(f.relpath for f in kept) == [
      'bra/exports/2026-12/benign/other_site.png', 'busi/exports/2026-11/benign/first.png',
      'busi/exports/2026-11/benign/twin.png', 'busi/exports/2026-12/malignant/relabelled.png']
  assert [(e.file, e.reason) for e in repeated] == [(
      'busi/exports/2026-12/benign/again.png',
      'same image as busi/exports/2026-11/benign/first.png of an earlier export; read once')]
