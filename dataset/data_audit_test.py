"""The data policy and the report, on audits built from plain values."""

import dataclasses
import json

import pytest

from contracts import names
from dataset import data_audit
from dataset import image_files

_POLICY = data_audit.DataPolicy(class_names=('benign', 'malignant', 'normal'),
                                split_names=('train', 'eval', 'test'))
_SPLITS = ('train', 'eval', 'test')


def _audit(per_class=(4, 4, 4), quarantined=0, policy=_POLICY, conflict=False):
  assignment, labels, sha256 = {}, {}, {}
  for label, count in zip(policy.class_names, per_class):
    for n in range(count):
      path = f'{label}/{label} ({n}).png'
      assignment[path], labels[path], sha256[path] = _SPLITS[n % 3], label, path
  groups = {path: path for path in labels}
  if conflict:
    labels['benign/copy.png'] = 'benign'
    sha256['benign/copy.png'] = sha256['malignant/malignant (0).png']
    groups['benign/copy.png'] = groups['malignant/malignant (0).png']
  return data_audit.build(
      data_root='/data', policy=policy, near_duplicate_max_bits=10,
      assignment=assignment, labels=labels,
      groups=data_audit.duplicate_groups(groups, labels, sha256),
      quarantined=[image_files.ExcludedFile(f'benign/bad {n}.png', 'empty file')
                   for n in range(quarantined)],
      ignored=[image_files.ExcludedFile('benign/.DS_Store', 'hidden file or folder')],
      notes=[])


def test_quarantine_within_the_limit_passes():
  data_audit.enforce(_audit(per_class=(40, 40, 40), quarantined=6), _POLICY, 'r.md')


def test_quarantine_over_the_limit_fails_naming_files_and_report():
  with pytest.raises(data_audit.DataAuditError) as error:
    data_audit.enforce(_audit(per_class=(40, 40, 40), quarantined=7), _POLICY, 'r.md')
  assert str(error.value).splitlines() == [
      '7 of 127 files quarantined (5.5%); the limit is 5.0% of files:',
      *[f'  benign/bad {n}.png: empty file' for n in range(7)],
      'Full report: r.md']


def test_strict_fails_on_a_single_file():
  strict = dataclasses.replace(_POLICY, strict=True)
  with pytest.raises(data_audit.DataAuditError, match='strict mode allows none'):
    data_audit.enforce(_audit(per_class=(40, 40, 40), quarantined=1), strict, 'r.md')


def test_long_lists_are_cut_in_the_message():
  with pytest.raises(data_audit.DataAuditError, match=r'\.\.\. and 2 more'):
    data_audit.enforce(_audit(quarantined=12), _POLICY, 'r.md')


def test_fail_policy_stops_on_a_label_conflict():
  fail = dataclasses.replace(_POLICY, label_conflicts='fail')
  audit = _audit(conflict=True, policy=fail)
  with pytest.raises(data_audit.DataAuditError,
                     match=r'benign/copy.png \(benign\), malignant/malignant \(0\).png'):
    data_audit.enforce(audit, fail, 'r.md')
  data_audit.enforce(audit, _POLICY, 'r.md')


@pytest.mark.parametrize('per_class, short', [((4, 2, 4), 'malignant'),
                                               ((4, 4, 0), 'normal')])
def test_a_class_too_small_for_the_splits_fails(per_class, short):
  with pytest.raises(data_audit.DataAuditError,
                     match=f"class '{short}': {min(per_class)} independent images, "
                           'the 3 splits'):
    data_audit.enforce(_audit(per_class=per_class), _POLICY, 'r.md')


def test_unknown_policy_is_refused():
  with pytest.raises(ValueError, match='label_conflicts must be one of'):
    dataclasses.replace(_POLICY, label_conflicts='merge')


def test_report_lists_every_section():
  report = data_audit.markdown_report(_audit(quarantined=1, conflict=True))
  for heading in ('## Images per split', '## Quarantined (1)', '## Label conflicts (1)',
                  '## Near-duplicate groups (1)', '## Ignored (1)'):
    assert heading in report
  assert '| benign/bad 0.png | empty file |' in report


def test_summary_line_counts_everything():
  assert data_audit.summary_line(_audit(quarantined=1, conflict=True)) == (
      'Data audit: 12 images ingested (benign 4, malignant 4, normal 4), 1 quarantined, '
      '1 ignored; 1 near-duplicate groups (1 exact), 1 label conflicts (dropped).')


def _small_audit():
  """Two images ingested, one with a mask; one conflicting copy and one empty file."""
  labels = {'benign/a.png': 'benign', 'malignant/b.png': 'malignant',
            'benign/c.png': 'benign'}
  groups = {'benign/a.png': 'a', 'malignant/b.png': 'g1', 'benign/c.png': 'g1'}
  sha256 = {'benign/a.png': 'x', 'malignant/b.png': 'y', 'benign/c.png': 'y'}
  return data_audit.build(
      data_root='/data', policy=_POLICY, near_duplicate_max_bits=10,
      assignment={'malignant/b.png': 'eval', 'benign/a.png': 'train'}, labels=labels,
      groups=data_audit.duplicate_groups(groups, labels, sha256),
      quarantined=[image_files.ExcludedFile('normal/bad.png', 'empty file'),
                   image_files.ExcludedFile('benign/c.png', 'copy', ('benign/c_mask.png',))],
      ignored=[image_files.ExcludedFile('.DS_Store', 'hidden file or folder')],
      notes=[data_audit.FileNote('benign/a.png', 'mask resized')],
      masks={'benign/a.png': ('benign/a_mask.png',)},
      site_of=lambda relpath: 'default')


def test_the_audit_file_keeps_its_format(tmp_path):
  data_audit.write(_small_audit(), str(tmp_path))
  with open(tmp_path / names.DATA_AUDIT_FILE, encoding='utf-8') as f:
    written = json.load(f)
  group = {'group_id': 'g1', 'exact': True, 'labels': ['benign', 'malignant'],
           'splits': ['eval'], 'patients': 0, 'files': [{'file': 'benign/c.png', 'label': 'benign'},
                                         {'file': 'malignant/b.png', 'label': 'malignant'}]}
  assert written == {
      'data_root': '/data',
      'policy': {'class_names': ['benign', 'malignant', 'normal'],
                 'split_names': ['train', 'eval', 'test'], 'max_quarantined_fraction': 0.05,
                 'strict': False, 'label_conflicts': 'drop', 'near_duplicate_max_bits': 10},
      'ingested': 2,
      'ingested_files': [{'file': 'benign/a.png', 'split': 'train',
                          'masks': ['benign/a_mask.png']},
                         {'file': 'malignant/b.png', 'split': 'eval'}],
      'class_counts': {'benign': 1, 'malignant': 1, 'normal': 0},
      'independent_images_per_class': {'benign': 1, 'malignant': 1, 'normal': 0},
      'split_counts': {'eval': {'malignant': 1}, 'train': {'benign': 1}},
      'quarantined': [{'file': 'benign/c.png', 'reason': 'copy',
                       'masks': ['benign/c_mask.png']},
                      {'file': 'normal/bad.png', 'reason': 'empty file'}],
      'quarantined_fraction': 0.5,
      'ignored': [{'file': '.DS_Store', 'reason': 'hidden file or folder', 'masks': []}],
      'notes': [{'file': 'benign/a.png', 'note': 'mask resized'}],
      'exact_duplicate_groups': [group],
      'near_duplicate_groups': [group],
      'label_conflicts': [group],
      'site_counts': {'default': {
          'ingested': 2, 'quarantined': 2, 'ignored': 1,
          'class_counts': {'benign': 1, 'malignant': 1, 'normal': 0},
          'split_counts': {'eval': {'malignant': 1}, 'train': {'benign': 1}}}},
      'patient_conflicts': [],
      'export_counts': {},
  }


def test_an_audit_reads_back_as_written(tmp_path):
  audit = _small_audit()
  data_audit.write(audit, str(tmp_path))
  assert data_audit.read(str(tmp_path)) == audit
  with open(tmp_path / names.DATA_AUDIT_REPORT_FILE, encoding='utf-8') as f:
    assert f.read() == data_audit.markdown_report(audit)


def test_an_audit_that_only_counts_its_ingested_images_still_reads(tmp_path):
  with open(tmp_path / names.DATA_AUDIT_FILE, 'w', encoding='utf-8') as f:
    f.write(json.dumps({k: v for k, v in json.loads(_small_audit().to_json()).items()
                        if k != 'ingested_files'}))
  audit = data_audit.read(str(tmp_path))
  assert (audit.ingested, audit.ingested_files) == (2, ())
  assert data_audit.summary_line(audit) == data_audit.summary_line(_small_audit())


def _two_site_audit(label_conflicts='drop'):
  """Two sites; patient 7 of site b has a benign and a malignant scan."""
  labels = {'a/benign/x.png': 'benign', 'b/images/p7-l.png': 'benign',
            'b/images/p7-r.png': 'malignant', 'b/images/p8-l.png': 'malignant'}
  conflict = data_audit.PatientConflict(
      'b', '7', (data_audit.DuplicateMember('b/images/p7-l.png', 'benign'),
                 data_audit.DuplicateMember('b/images/p7-r.png', 'malignant')),
      ('benign', 'malignant'))
  return data_audit.build(
      data_root='a=/a;b=/b',
      policy=dataclasses.replace(_POLICY, label_conflicts=label_conflicts),
      near_duplicate_max_bits=10,
      assignment={'a/benign/x.png': 'train', 'b/images/p7-l.png': 'test',
                  'b/images/p7-r.png': 'test', 'b/images/p8-l.png': 'eval'},
      labels=labels, groups=[],
      quarantined=[image_files.ExcludedFile('b/manifest.csv:4', 'duplicate row')],
      ignored=[image_files.ExcludedFile('b/README.md', 'not an image')], notes=[],
      split_groups={'a/benign/x.png': 'g1', 'b/images/p7-l.png': 'g2',
                    'b/images/p7-r.png': 'g2', 'b/images/p8-l.png': 'g3'},
      site_of=lambda relpath: relpath.split('/', 1)[0],
      patient_conflicts=[conflict])


def test_the_audit_counts_per_site_and_lists_patients_under_two_labels(tmp_path):
  audit = _two_site_audit()
  assert audit.site_counts['a'] == data_audit.SiteCounts(
      1, 0, 0, {'benign': 1, 'malignant': 0, 'normal': 0}, {'train': {'benign': 1}})
  assert audit.site_counts['b'] == data_audit.SiteCounts(
      3, 1, 1, {'benign': 1, 'malignant': 2, 'normal': 0},
      {'eval': {'malignant': 1}, 'test': {'benign': 1, 'malignant': 1}})
  # A patient's two images count once among the independent images.
  assert audit.independent_images_per_class == {'benign': 2, 'malignant': 1, 'normal': 0}
  report = data_audit.markdown_report(audit)
  assert '## Images per site' in report and '| b | 3 | 1 | 1 |' in report
  assert '## Patients under two labels (1)' in report
  assert 'patient 7 of b: b/images/p7-l.png (benign), b/images/p7-r.png (malignant)' in report
  assert 'Sites: a 1 ingested, 0 quarantined; b 3 ingested, 1 quarantined.' in (
      data_audit.summary_line(audit))
  data_audit.write(audit, str(tmp_path))
  assert data_audit.read(str(tmp_path)) == audit


def test_a_patient_under_two_labels_is_kept_but_stops_a_fail_policy_run():
  lenient = dataclasses.replace(_POLICY, class_names=('benign', 'malignant'),
                                split_names=('train',), max_quarantined_fraction=1)
  data_audit.enforce(_two_site_audit(), lenient, 'report.md')
  with pytest.raises(data_audit.DataAuditError, match='1 label conflicts .policy: fail'):
    data_audit.enforce(_two_site_audit('fail'),
                       dataclasses.replace(lenient, label_conflicts='fail'), 'report.md')


def test_a_stop_message_escapes_a_newline_in_a_file_name():
  policy = data_audit.DataPolicy(('benign',), ('train',), strict=True)
  audit = data_audit.build(
      data_root='/data', policy=policy, near_duplicate_max_bits=10,
      assignment={'benign/a.png': 'train'}, labels={'benign/a.png': 'benign'}, groups=[],
      quarantined=[image_files.ExcludedFile('benign/bad\nname.png', 'control character')],
      ignored=[], notes=[])
  with pytest.raises(data_audit.DataAuditError) as stop:
    data_audit.enforce(audit, policy, 'r.md')
  assert str(stop.value).splitlines()[1:] == [
      '  benign/bad\\nname.png: control character', 'Full report: r.md']
