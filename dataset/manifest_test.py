"""A manifest site is audited as strictly as a class-folder tree: one test per bad input."""

import json
import os

from PIL import Image
import numpy as np
import pytest

from contracts import configs
from contracts import features
from dataset import image_files
from dataset import manifest
from dataset import split_plan
from tests.fixtures import synthetic_busi

_COLUMNS = configs.ManifestColumns()
_CLASSES = features.CLASS_NAMES


@pytest.fixture
def site(tmp_path):
  return synthetic_busi.write_manifest_dataset(str(tmp_path / 'site'), patients_per_class=3)


def _append(root, *rows):
  with open(os.path.join(root, _COLUMNS.manifest), 'a', encoding='utf-8') as f:
    f.write(''.join(f'{row}\n' for row in rows))


def _scan(root, columns=_COLUMNS):
  return manifest.scan_manifest(root, columns, _CLASSES)


def _reasons(scan):
  return {q.file: q.reason for q in scan.quarantined}


def test_a_clean_manifest_ingests_every_row_with_its_patient_device_and_mask(site):
  scan = _scan(site)
  assert len(scan.images) == 12 and not scan.quarantined
  first = scan.images[0]
  assert first == image_files.ImageFile(
      'images/b001-l.png', 'benign', ('masks/b001-l.png',), patient_id='b001',
      device='Scanner B')
  assert [i.file for i in scan.ignored] == ['manifest.csv']


def test_a_row_whose_image_is_missing_is_quarantined(site):
  _append(site, 'images/gone.png,benign,masks/gone.png,b099,Scanner A')
  reasons = _reasons(_scan(site))
  assert reasons == {'images/gone.png': 'listed on manifest.csv line 14 but missing'}


def test_an_image_no_row_names_is_quarantined_and_other_files_ignored(site):
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(
      os.path.join(site, 'images', 'stray.png'))
  with open(os.path.join(site, 'README.txt'), 'w') as f:
    f.write('export notes')
  scan = _scan(site)
  assert _reasons(scan) == {'images/stray.png': 'image not listed in manifest.csv '
                                                '(neither an image nor a mask of a row)'}
  assert {i.file: i.reason for i in scan.ignored}['README.txt'] == (
      'not an image, not in the manifest')


def test_a_label_outside_the_schema_is_quarantined(site):
  os.rename(os.path.join(site, 'images', 'm003-r.png'), os.path.join(site, 'images', 'x.png'))
  _append(site, 'images/x.png,suspicious,,m099,Scanner A')
  assert _reasons(_scan(site)) == {
      'images/x.png': "label 'suspicious' on manifest.csv line 14 is not a known class "
                      '(benign, malignant, normal)',
      'images/m003-r.png': 'listed on manifest.csv line 13 but missing'}


def test_a_duplicate_row_is_quarantined_and_a_disagreeing_one_quarantines_the_image(site):
  _append(site, 'images/b001-l.png,benign,masks/b001-l.png,b001,Scanner B',
          'images/b002-l.png,malignant,masks/b002-l.png,b002,Scanner A')
  scan = _scan(site)
  assert _reasons(scan) == {
      'manifest.csv:14': 'duplicate row: names images/b001-l.png again (first on line 2)',
      'images/b002-l.png': 'listed on manifest.csv lines 4, 15 under different labels '
                           '(benign, malignant)'}
  assert 'images/b001-l.png' in {i.relpath for i in scan.images}


def test_a_mask_of_another_size_is_resized_and_noted(site):
  Image.fromarray(np.full((20, 30), 255, np.uint8)).save(
      os.path.join(site, 'masks', 'b001-l.png'))
  image = _scan(site).images[0]
  png, notes = image_files.union_mask(site, image.mask_relpaths, (72, 60))
  assert notes == ['masks/b001-l.png: mask is 30x20, image is 72x60; resized to the image',
                   'the masks cover 100% of the image: an inverted or all-white mask?']
  assert image_files.open_image(png, 'mask').size == (72, 60)


def test_a_patient_under_two_labels_is_reported_and_kept_in_one_split(site):
  Image.fromarray(np.zeros((60, 72), np.uint8)).save(os.path.join(site, 'other.png'))
  _append(site, 'other.png,malignant,,b001,Scanner B')
  scan = _scan(site)
  fingerprints = [image_files.fingerprint(site, i) for i in scan.images]
  plan = split_plan.plan_splits(fingerprints, {'train': 60, 'eval': 20, 'test': 20},
                                10, 42, 'drop')
  (conflict,) = plan.patient_conflicts
  assert (conflict.patient_id, conflict.labels) == ('b001', ('benign', 'malignant'))
  assert [m.file for m in conflict.files] == [
      'images/b001-l.png', 'images/b001-r.png', 'other.png']
  assert len({plan.assignment[m.file] for m in conflict.files}) == 1  # (group, split)


def test_rows_with_unusable_paths_are_quarantined_by_line(site):
  _append(site, '../outside.png,benign,,b050,Scanner A', ',benign,,b051,Scanner A')
  assert _reasons(_scan(site)) == {
      'manifest.csv:14': 'row names a path that leaves the site folder (..)',
      'manifest.csv:15': "row names no image: column 'image' is empty"}


def test_a_manifest_without_a_named_column_is_one_message(site):
  columns = configs.MANIFEST_PRESETS['bus_bra']
  os.rename(os.path.join(site, _COLUMNS.manifest), os.path.join(site, columns.manifest))
  with pytest.raises(manifest.ManifestError, match=r"has no column 'Pathology', 'ID', 'BIRADS' "
                     r'\(its columns: image, label, mask, patient_id, device\)'):
    _scan(site, columns)


def test_json_lines_with_bus_bra_style_templates(tmp_path):
  root = str(tmp_path)
  os.makedirs(os.path.join(root, 'Images'))
  os.makedirs(os.path.join(root, 'Masks'))
  for name in ('bus_0001-l', 'bus_0001-r'):
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(os.path.join(root, 'Images', f'{name}.png'))
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(
        os.path.join(root, 'Masks', f'mask_{name[4:]}.png'))
  columns = configs.ManifestColumns(
      manifest='export.jsonl', image='ID', label='Pathology', mask='', patient='Case',
      device='', image_path='Images/{ID}.png',
      mask_path='Masks/mask_{ID|removeprefix:bus_}.png')
  with open(os.path.join(root, 'export.jsonl'), 'w') as f:
    f.write(json.dumps({'ID': 'bus_0001-l', 'Pathology': 'benign', 'Case': 1}) + '\n')
    f.write(json.dumps({'ID': 'bus_0001-r', 'Pathology': 'benign', 'Case': 1}) + '\n')
    f.write('[1, 2]\n')
  scan = _scan(root, columns)
  assert [(i.relpath, i.mask_relpaths, i.patient_id) for i in scan.images] == [
      ('Images/bus_0001-l.png', ('Masks/mask_0001-l.png',), '1'),
      ('Images/bus_0001-r.png', ('Masks/mask_0001-r.png',), '1')]
  assert _reasons(scan) == {'export.jsonl:3': 'not a JSON object'}


def test_patients_never_straddle_splits(tmp_path):
  root = synthetic_busi.write_manifest_dataset(str(tmp_path / 'site'), patients_per_class=20)
  scan = _scan(root)
  fingerprints = [image_files.fingerprint(root, i) for i in scan.images]
  plan = split_plan.plan_splits(fingerprints, {'train': 60, 'eval': 20, 'test': 20},
                                10, 42, 'drop')
  split_of_patient = {}
  for fp in fingerprints:
    split_of_patient.setdefault(fp.patient_id, set()).add(plan.splits()[fp.relpath])
  assert len(split_of_patient) == 40
  assert all(len(splits) == 1 for splits in split_of_patient.values())
  assert {split for splits in split_of_patient.values() for split in splits} == {
      'train', 'eval', 'test'}
  # A patient's images share their group id.
  groups = {}
  for fp in fingerprints:
    groups.setdefault(fp.patient_id, set()).add(plan.assignment[fp.relpath][0])
  assert all(len(g) == 1 for g in groups.values())


def test_renamed_columns_need_no_template(site):
  with open(os.path.join(site, 'export.csv'), 'w') as f:
    f.write('File,Diagnosis\nimages/b001-l.png,benign\n')
  columns = configs.ManifestColumns(manifest='export.csv', image='File', label='Diagnosis',
                                    mask='', patient='', device='')
  scan = _scan(site, columns)
  assert scan.images == [image_files.ImageFile('images/b001-l.png', 'benign')]
  assert len(scan.quarantined) == 11 + 12  # the images and masks no row names


def _near_copy(site, source, target):
  """`target`: `source` with a caliper mark burned in (a near-duplicate)."""
  pixels = np.array(Image.open(os.path.join(site, source)))
  pixels[2:4, 2:10] = 255
  Image.fromarray(pixels).save(os.path.join(site, target))


def test_look_alike_scans_of_two_patients_share_a_split_without_a_label_conflict(site):
  _near_copy(site, 'images/b001-l.png', 'images/lookalike.png')
  _append(site, 'images/lookalike.png,malignant,,m077,Scanner A')
  _near_copy(site, 'images/b002-l.png', 'images/unnamed.png')
  _append(site, 'images/unnamed.png,malignant,,,Scanner A')
  scan = _scan(site)
  plan = split_plan.plan_splits([image_files.fingerprint(site, i) for i in scan.images],
                                {'train': 60, 'eval': 20, 'test': 20}, 10, 42, 'drop')
  look_alike, unnamed = (next(g for g in plan.groups if f'images/{name}.png' in
                              {m.file for m in g.files}) for name in ('lookalike', 'unnamed'))
  assert (look_alike.patients, look_alike.is_label_conflict) == (2, False)
  assert plan.splits()['images/lookalike.png'] == plan.splits()['images/b001-l.png']
  # Without a patient on both sides it may be one scan under two labels: dropped.
  assert (unnamed.patients, unnamed.is_label_conflict) == (0, True)
  assert {d.file for d in plan.dropped} == {'images/b002-l.png', 'images/unnamed.png'}


def _with_birads_column(root, cells):
  """Rewrites the manifest with a BIRADS column holding `cells`, row by row."""
  path = os.path.join(root, _COLUMNS.manifest)
  with open(path, encoding='utf-8') as f:
    lines = f.read().splitlines()
  rows = [lines[0] + ',BIRADS'] + [f'{line},{cell}' for line, cell in zip(lines[1:], cells)]
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(rows) + '\n')
  return configs.ManifestColumns(birads='BIRADS')


def test_birads_is_read_per_image_and_an_empty_cell_is_no_value(site):
  columns = _with_birads_column(site, ['4', '', '4c', '2', '5', '3'] + [''] * 6)
  scan = _scan(site, columns)
  assert not scan.quarantined
  # The rows are in the order of the sorted image paths.
  assert [i.birads for i in scan.images] == [4, None, 4, 2, 5, 3] + [None] * 6
  assert all(not i.notes for i in scan.images)


def test_a_bad_birads_is_noted_and_read_as_none_the_image_kept(site):
  columns = _with_birads_column(site, ['7', 'four', '4d'] + ['3'] * 9)
  scan = _scan(site, columns)
  assert len(scan.images) == 12 and not scan.quarantined
  bad = [i for i in scan.images if i.notes]
  assert [i.birads for i in bad] == [None, None, None]
  assert bad[0].notes == ("BI-RADS '7' is not a category (0 to 6, or 4a, 4b, 4c) "
                          "(column 'BIRADS', manifest.csv line 2); read as no BI-RADS",)


def test_a_named_birads_column_the_manifest_lacks_is_one_message(site):
  with pytest.raises(manifest.ManifestError, match="has no column 'BIRADS'"):
    _scan(site, configs.ManifestColumns(birads='BIRADS'))


def test_the_bus_bra_preset_reads_birads():
  assert configs.MANIFEST_PRESETS['bus_bra'].birads == 'BIRADS'
  assert manifest.parse_birads(' 4a ') == 4 and manifest.parse_birads('') is None
