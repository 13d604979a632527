"""The invariants of docs/invariants.md, one named case each, as a user meets them.

Each runner case stops before the pipeline runs (exit 2, nothing written) or
prints its note and is stopped by the test at the pipeline's start; the notes
on unusual input are checked on the scan and the reading of one image.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

import local_runner
from contracts import configs
from dataset import data_root
from dataset import image_files
from dataset import manifest
from orchestration import local
from tests.fixtures import synthetic_busi

_HEADER = 'image,label,mask,patient_id,device\n'


class _PipelineStarted(Exception):
  """Raised in place of the pipeline: the runner got past every check."""


@pytest.fixture
def no_pipeline(monkeypatch):
  def started(config):
    raise _PipelineStarted(config)
  monkeypatch.setattr(local, 'run', started)
  monkeypatch.delenv(data_root.ENV_VAR, raising=False)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  return synthetic_busi.write_dataset(str(tmp_path_factory.mktemp('tiny') / 'data'),
                                      per_class=3)


def _main(capsys, *argv):
  """(exit code or 'started', stdout, stderr) of local_runner.main."""
  try:
    code = local_runner.main(list(argv))
  except _PipelineStarted:
    code = 'started'
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _manifest_site(folder, data: bytes, name='manifest.csv'):
  os.makedirs(folder)
  with open(os.path.join(folder, name), 'wb') as f:
    f.write(data)
  return str(folder)


@pytest.mark.parametrize('data, name, expected', [
    (b'', 'manifest.csv', 'is empty (0 bytes): it names no image'),
    (b'\n\n', 'manifest.csv', 'is empty (2 bytes)'),
    (_HEADER.encode(), 'manifest.csv',
     'has a header (image, label, mask, patient_id, device) but no rows'),
    (b'{oops\n[1, 2]\n', 'manifest.jsonl',
     'has no readable row: all 2 lines are unreadable (line 1: not a JSON object'),
])
def test_a_manifest_without_rows_says_so(tmp_path, capsys, no_pipeline, data, name, expected):
  root = _manifest_site(tmp_path / 'site', data, name)
  columns = tmp_path / 'columns.json'
  columns.write_text(json.dumps({'manifest': name}))
  code, _, err = _main(capsys, '--data-root', root, '--manifest-columns',
                       f'default={columns}', '--output-dir', str(tmp_path / 'out'))
  assert code == 2
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(f'--data-root: manifest {os.path.join(root, name)} {expected}')
  assert '--manifest-columns' not in err
  assert not (tmp_path / 'out').exists()


def test_a_busi_dir_set_beside_data_root_is_said_to_be_unused(tiny, tmp_path, capsys,
                                                              no_pipeline, monkeypatch):
  monkeypatch.setenv(data_root.ENV_VAR, '/elsewhere/busi')
  code, out, _ = _main(capsys, '--data-root', tiny, '--output-dir', str(tmp_path / 'out'))
  assert code == 'started'
  assert 'Note: $BUSI_DIR (/elsewhere/busi) is not read: --data-root names the data.' in out


def test_an_empty_site_is_a_note_and_an_empty_run_a_stop(tiny, tmp_path, capsys, no_pipeline):
  empty = tmp_path / 'empty'
  empty.mkdir()
  code, out, _ = _main(capsys, '--data-root', f'a={empty}', '--data-root', f'b={tiny}',
                       '--output-dir', str(tmp_path / 'out'))
  assert code == 'started'
  assert f'Note: site a: site folder {empty} is empty: it contributes no image.' in out
  code, _, err = _main(capsys, '--data-root', str(empty), '--output-dir',
                       str(tmp_path / 'out2'))
  assert code == 2
  assert err.strip() == f'--data-root: site folder {empty} is empty: it contributes no image.'
  assert not (tmp_path / 'out2').exists()


def test_an_empty_site_is_named_in_the_scan(tmp_path):
  for name in ('benign', 'normal'):
    (tmp_path / name).mkdir()
  scan = image_files.scan_folder(str(tmp_path), ('benign', 'malignant', 'normal'))
  site = image_files.with_site(scan, 'a', 'a/')
  assert [(e.file, e.reason.split(':')[0]) for e in site.ignored] == [
      ('a/benign', 'empty class folder'), ('a/normal', 'empty class folder'),
      ('a', f'site folder {tmp_path} holds no image in a class folder (benign/, '
            'malignant/, normal/)')]


def test_unused_manifest_columns_are_said_to_be_unused(tiny, tmp_path, capsys, no_pipeline):
  code, out, _ = _main(capsys, '--data-root', tiny, '--manifest-columns', 'default=bus_bra',
                       '--output-dir', str(tmp_path / 'out'))
  assert code == 'started'
  assert (f'Note: --manifest-columns default=...: {tiny} holds no bus_data.csv, so the site '
          'is read as class folders and the columns are not used.') in out


@pytest.mark.parametrize('output_dir, expected', [
    ('', '--output-dir needs a folder, got an empty value.'),
    ('{file}', '--output-dir {file} cannot be used: File exists ({file})'),
    ('{file}/out', '--output-dir {file}/out cannot be used: Not a directory ({file}/out)'),
])
def test_an_unusable_output_dir_is_one_line(tiny, tmp_path, capsys, no_pipeline,
                                            output_dir, expected):
  blocker = tmp_path / 'a file'
  blocker.write_text('x')
  code, _, err = _main(capsys, '--data-root', tiny, '--output-dir',
                       output_dir.format(file=blocker))
  assert code == 2
  assert len(err.strip().splitlines()) == 1
  assert err.startswith(expected.format(file=blocker))


def test_a_tilde_that_was_not_expanded_is_pointed_out(tmp_path, capsys, no_pipeline):
  code, _, err = _main(capsys, '--data-root', '~/no such data', '--output-dir',
                       str(tmp_path / 'out'))
  assert code == 2
  assert 'is not expanded by the shell' in err


def _png(path, pixels):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(pixels).save(path)
  return path


def test_unusual_images_and_masks_are_accepted_with_a_note(tmp_path):
  root = str(tmp_path)
  _png(os.path.join(root, 'benign', 'small.png'), np.full((20, 24), 90, np.uint8))
  _png(os.path.join(root, 'benign', 'wide.png'), np.full((40, 200), 90, np.uint8))
  notes = {name: image_files.fingerprint(root, image_files.ImageFile(
      f'benign/{name}.png', 'benign')).notes for name in ('small', 'wide')}
  assert notes['small'] == ('small image: 24x20 pixels, under 32 on a side: a thumbnail '
                            'rather than a scan?',)
  assert notes['wide'] == ('elongated image: 200x40 pixels, more than 3 to 1; the model '
                           'squeezes it to a square',)
  white = _png(os.path.join(root, 'white.png'), np.full((10, 10), 255, np.uint8))
  lesion = np.zeros((10, 10), np.uint8)
  lesion[2:5, 2:5] = 255
  _png(os.path.join(root, 'lesion.png'), lesion)
  _, on_normal = image_files.union_mask(root, ['lesion.png'], (10, 10), expect_lesion=False)
  assert on_normal == ['1 mask file(s) outline a lesion on a scan of a class without lesions']
  _, all_white = image_files.union_mask(root, [os.path.basename(white)], (10, 10),
                                        expect_lesion=True)
  assert all_white == ['the masks cover 100% of the image: an inverted or all-white mask?']


def test_a_row_without_the_id_others_have_is_noted(tmp_path):
  root = str(tmp_path)
  for name in ('a.png', 'b.png'):
    _png(os.path.join(root, name), np.full((40, 40), 90, np.uint8))
  with open(os.path.join(root, 'manifest.csv'), 'w', encoding='utf-8') as f:
    f.write(_HEADER + 'a.png,benign,,p1,Scanner A\nb.png,benign,,,Scanner A\n')
  scan = manifest.scan_manifest(root, configs.ManifestColumns(), ('benign', 'malignant'))
  assert {i.relpath: i.notes for i in scan.images} == {
      'a.png': (),
      'b.png': ("no patient ('patient_id' is empty in manifest.csv) while 1 other images "
                'name theirs; read as its own patient',)}


def test_an_os_error_before_the_pipeline_is_one_line(tiny, tmp_path, capsys, no_pipeline,
                                                     monkeypatch):
  def unreadable(root, class_names=None):
    raise PermissionError(13, 'Permission denied', os.path.join(root, 'benign'))
  monkeypatch.setattr(image_files, 'scan_folder', unreadable)
  code, _, err = _main(capsys, '--data-root', tiny, '--output-dir', str(tmp_path / 'out'))
  assert code == 2
  assert err.strip() == ('Stopped before the pipeline ran: an operating-system error: '
                         f'Permission denied on {tiny}/benign.')
