"""ImageExampleGen's executor against the data fingerprint it is given (driver or DataFingerprint).

That a matching fingerprint reaches the model card is shown end to end in
tests/kubeflow_launcher_test.py.
"""

import os

import pytest
from tfx.components.example_gen import utils as example_gen_utils

from components.image_example_gen import driver
from components.image_example_gen import executor_test
from dataset import data_audit
from tests.fixtures import synthetic_busi

_KEY = example_gen_utils.FINGERPRINT_PROPERTY_NAME


def test_data_changed_since_its_fingerprint_stops_the_run_in_one_message(tmp_path):
  root = synthetic_busi.write_dataset(str(tmp_path / 'data'), per_class=3)
  fingerprint = driver.folder_fingerprint(root)
  image = os.path.join(root, 'benign', 'benign (1).png')
  with open(image, 'ab') as f:
    f.write(b'\0')
  with pytest.raises(data_audit.DataAuditError, match='The data changed while this run read it'):
    executor_test.run_executor(root, str(tmp_path / 'examples'), {_KEY: fingerprint})
