"""The torch-free legacy checkpoint reader: strided views, refused globals, bad files.

The test files are written opcode by opcode, as torch.save would lay them
out, so that no torch is needed to make them and the reader is tested on the
exact bytes it must accept or refuse.
"""

import pickle
import struct
import zipfile

import numpy as np
import pytest

from models import torch_legacy_checkpoint


def _global(module, name):
  return b'c' + f'{module}\n{name}\n'.encode()


def _str(text):
  data = text.encode()
  return b'X' + struct.pack('<I', len(data)) + data


def _int(value):
  return b'J' + struct.pack('<i', value)


def _tuple(items):
  return b'(' + b''.join(items) + b't'


def _empty_ordered_dict():
  return _global('collections', 'OrderedDict') + b')R'


def _tensor(storage_type, key, storage_size, offset, shape, strides):
  """The pickle of `_rebuild_tensor_v2(storage, offset, shape, strides, ...)`."""
  storage = _tuple([_str('storage'), _global('torch', storage_type), _str(key),
                    _str('cpu'), _int(storage_size), b'N']) + b'Q'
  arguments = _tuple([storage, _int(offset), _tuple([_int(s) for s in shape]),
                      _tuple([_int(s) for s in strides]), b'\x89',
                      _empty_ordered_dict()])
  return _global('torch._utils', '_rebuild_tensor_v2') + arguments + b'R'


def _state_dict(tensors):
  items = b''.join(_str(name) + tensor for name, tensor in tensors)
  return b'\x80\x02' + _empty_ordered_dict() + b'(' + items + b'u.'


def _header():
  system = {'protocol_version': 1001, 'little_endian': True,
            'type_sizes': {'short': 2, 'int': 4, 'long': 4}}
  return b''.join(pickle.dumps(v, protocol=2) for v in (
      torch_legacy_checkpoint.MAGIC_NUMBER, torch_legacy_checkpoint.PROTOCOL_VERSION,
      system))


def _storages(storages):
  """The key list and each storage's element count and bytes."""
  data = pickle.dumps([key for key, _ in storages], protocol=2)
  for _, array in storages:
    data += struct.pack('<q', array.size) + array.astype(array.dtype.newbyteorder('<')).tobytes()
  return data


def _write(tmp_path, content, name='weights.pth'):
  path = tmp_path / name
  path.write_bytes(content)
  return str(path)


_FLOATS = np.arange(12, dtype=np.float32)


def _strided_checkpoint():
  tensors = [
      # The transpose of a 2 x 3 matrix, as torch stores it after `.t()`.
      ('transposed', _tensor('FloatStorage', '0', 12, 0, (3, 2), (1, 3))),
      # A window into the middle of the same storage, rows 3 apart.
      ('window', _tensor('FloatStorage', '0', 12, 5, (2, 2), (3, 1))),
      # Every other element from an offset.
      ('every_other', _tensor('FloatStorage', '0', 12, 1, (3,), (2,))),
      ('steps', _tensor('LongStorage', '1', 1, 0, (), ())),
  ]
  storages = [('0', _FLOATS), ('1', np.array([7], np.int64))]
  return _header() + _state_dict(tensors) + _storages(storages)


def test_each_tensor_is_read_with_its_offset_and_strides(tmp_path):
  state = torch_legacy_checkpoint.read_state_dict(_write(tmp_path, _strided_checkpoint()))
  assert list(state) == ['transposed', 'window', 'every_other', 'steps']
  np.testing.assert_array_equal(state['transposed'], _FLOATS[:6].reshape(2, 3).T)
  np.testing.assert_array_equal(state['window'], [[5, 6], [8, 9]])
  np.testing.assert_array_equal(state['every_other'], [1, 3, 5])
  assert state['steps'].dtype == np.int64 and state['steps'].shape == ()
  assert state['steps'] == 7
  # Copies, not views into the file's bytes.
  assert all(a.flags.owndata and a.flags.writeable for a in state.values())


def test_a_refused_global_raises_and_runs_nothing(tmp_path):
  marker = tmp_path / 'ran'
  command = _global('os', 'system') + _tuple([_str(f'touch {marker}')]) + b'R.'
  path = _write(tmp_path, _header() + b'\x80\x02' + command)
  with pytest.raises(torch_legacy_checkpoint.CheckpointError,
                     match=r'names os\.system.*refusing'):
    torch_legacy_checkpoint.read_state_dict(path)
  assert not marker.exists()


def test_a_refused_global_inside_a_tensor_is_refused(tmp_path):
  tensor = _global('builtins', 'eval') + _tuple([_str('1 + 1')]) + b'R'
  path = _write(tmp_path, _header() + _state_dict([('x', tensor)]))
  with pytest.raises(torch_legacy_checkpoint.CheckpointError, match=r'builtins\.eval'):
    torch_legacy_checkpoint.read_state_dict(path)


def test_a_file_that_is_not_a_checkpoint_gets_a_clear_error(tmp_path):
  path = _write(tmp_path, b'\x89PNG\r\n\x1a\n' + bytes(64), 'scan.png')
  with pytest.raises(torch_legacy_checkpoint.CheckpointError,
                     match=r'scan\.png: cannot read the magic number'):
    torch_legacy_checkpoint.read_state_dict(path)


def test_a_pickle_with_another_magic_number_is_refused(tmp_path):
  path = _write(tmp_path, pickle.dumps(12345, protocol=2))
  with pytest.raises(torch_legacy_checkpoint.CheckpointError,
                     match='magic number 12345'):
    torch_legacy_checkpoint.read_state_dict(path)


def test_a_zip_format_checkpoint_is_named_as_such(tmp_path):
  path = tmp_path / 'new.pth'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('archive/data.pkl', b'')
  with pytest.raises(torch_legacy_checkpoint.CheckpointError, match='zip-format'):
    torch_legacy_checkpoint.read_state_dict(str(path))


def test_a_truncated_storage_is_refused(tmp_path):
  path = _write(tmp_path, _strided_checkpoint()[:-4])
  with pytest.raises(torch_legacy_checkpoint.CheckpointError, match='ends inside storage'):
    torch_legacy_checkpoint.read_state_dict(path)


def test_a_view_beyond_its_storage_is_refused(tmp_path):
  tensors = [('too_long', _tensor('FloatStorage', '0', 12, 4, (3, 3), (3, 1)))]
  path = _write(tmp_path, _header() + _state_dict(tensors) + _storages([('0', _FLOATS)]))
  with pytest.raises(torch_legacy_checkpoint.CheckpointError,
                     match=r"'too_long' reaches element 12 of a storage of 12"):
    torch_legacy_checkpoint.read_state_dict(path)


def test_a_missing_file_gets_a_clear_error(tmp_path):
  with pytest.raises(torch_legacy_checkpoint.CheckpointError, match='cannot read checkpoint'):
    torch_legacy_checkpoint.read_state_dict(str(tmp_path / 'absent.pth'))
