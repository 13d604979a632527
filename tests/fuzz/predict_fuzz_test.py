"""The fuzzer on predict.py: random folders of images and damaged files, a real SavedModel.

An untrained seed_cnn is exported once as the Trainer exports it
(tests/fixtures/exported_model.py); `predict.main` then classifies random trees drawn
by tests/fuzz/data_roots.py. Invariants: one --json entry per image found,
each a prediction whose probabilities sum to 1 or an error naming the cause;
one text line per image, its name escaped (a file name may hold a newline);
exit 0, 1 (some image refused) or 2 (nothing to classify), never a traceback.
Profiles as in fuzz_test.py.
"""

import json
import os
import tempfile

from hypothesis import given, settings
import pytest

import predict
from contracts import configs
from contracts import printable
from tests.fixtures import exported_model
from tests.fuzz import data_roots
from tests.fuzz import fuzz_test
from tests.fuzz import invariants


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  work_dir = tmp_path_factory.mktemp('predict_fuzz')
  exported = exported_model.export_untrained_model(
      configs.ModelConfig(name='seed_cnn', image_size=32), str(work_dir),
      str(work_dir / 'saved_model'))
  return predict.LocalModel(exported.saved_model_dir)


@settings(settings.get_profile(fuzz_test.PROFILE),
          max_examples=min(settings.get_profile(fuzz_test.PROFILE).max_examples, 60))
@given(spec=data_roots.root_specs(manifest=''))
def test_every_image_gets_one_line(model, spec):
  with tempfile.TemporaryDirectory() as base, pytest.MonkeyPatch.context() as patch:
    root = os.path.join(base, 'scans')
    data_roots.write(root, spec, os.path.join(base, 'outside.png'))
    patch.setattr(predict, 'LocalModel', lambda _: model)
    code, stdout, stderr = invariants.run_main(predict.main, [root, '--json'])
    invariants.check_one_message(code, stderr)
    if code == 2:
      assert 'folder holds no' in stderr, stderr
      return
    found = predict.find_images([root])
    entries = json.loads(stdout)
    assert [entry['image'] for entry in entries] == found
    for entry in entries:
      if 'error' in entry:
        assert entry['error'].strip(), entry
        continue
      assert abs(sum(entry['probabilities'].values()) - 1) < 1e-3, entry
    assert code == (1 if any('error' in entry for entry in entries) else 0)
    text_code, text_out, _ = invariants.run_main(predict.main, [root])
    assert text_code == code
    lines = text_out.splitlines()
    assert [line.split('\t')[0] for line in lines] == [printable.one_line(image)
                                                       for image in found]

