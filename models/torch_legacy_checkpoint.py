"""Reads a PyTorch legacy checkpoint (torch.save before 1.6) without torch.

ImageNet weights for EfficientNet-Lite0 are published only as such a file, and
this project neither depends on torch nor may unpickle arbitrary objects: a
pickle can name any importable callable and run it. The legacy layout is
five pickles and raw bytes, one after the other:

1. the magic number 0x1950a86a20f9469cfc6c;
2. the protocol version, 1001;
3. system information (byte order, sizes of C integer types);
4. the state dict: an OrderedDict name -> tensor, each tensor a call of
   `torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, ...)`
   whose storage is a persistent id ('storage', type, key, device, size, view);
5. the list of storage keys, in the order the storages follow;

then each storage: its element count as 8-byte little-endian integer and its
elements. The restricted unpickler knows only the four globals this needs and
refuses every other one before anything is called. Tensors may be views with
an offset into their storage and any strides (this file has many
non-contiguous ones), so each is read with exactly its offset and strides.
"""

import collections
import dataclasses
import io
import pickle
import struct
from typing import Any, BinaryIO, Dict, Tuple

import numpy as np

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001


class CheckpointError(ValueError):
  """The file is not a legacy torch checkpoint this reader can load safely."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str
  dtype: np.dtype


_STORAGE_TYPES = {
    'FloatStorage': _StorageType('FloatStorage', np.dtype('<f4')),
    'LongStorage': _StorageType('LongStorage', np.dtype('<i8')),
}


@dataclasses.dataclass(frozen=True)
class _StorageRef:
  """A storage named by a tensor, before its bytes have been read."""
  storage_type: _StorageType
  key: str
  size: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  """A tensor as the pickle describes it: a strided view of a storage."""
  storage: _StorageRef
  offset: int
  shape: Tuple[int, ...]
  strides: Tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused_args):
  """Stands in for `torch._utils._rebuild_tensor_v2`; records the view only.

  The remaining arguments (requires_grad, backward hooks, metadata) do not
  matter for weights.
  """
  if not isinstance(storage, _StorageRef):
    raise CheckpointError(f'a tensor is built from {type(storage).__name__}, '
                          f'not from a storage')
  return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size),
                    tuple(int(s) for s in stride))


_ALLOWED_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch', 'FloatStorage'): _STORAGE_TYPES['FloatStorage'],
    ('torch', 'LongStorage'): _STORAGE_TYPES['LongStorage'],
    ('collections', 'OrderedDict'): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """An unpickler that resolves only the globals of a weights-only checkpoint.

  Only the state dict refers to storages; in any other pickle a persistent id
  means the bytes are not a checkpoint at all.
  """

  def __init__(self, stream: BinaryIO, names_storages: bool):
    super().__init__(stream)
    self._names_storages = names_storages

  def find_class(self, module: str, name: str) -> Any:
    allowed = _ALLOWED_GLOBALS.get((module, name))
    if allowed is None:
      raise CheckpointError(
          f'the checkpoint names {module}.{name}, which a weights-only torch '
          f'checkpoint does not need; refusing to load it (allowed: '
          f'{", ".join(".".join(g) for g in _ALLOWED_GLOBALS)})')
    return allowed

  def persistent_load(self, pid: Any) -> _StorageRef:
    if not self._names_storages:
      raise pickle.UnpicklingError(f'unexpected persistent id {pid!r}')
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == 'storage'):
      raise CheckpointError(f'unexpected persistent id {pid!r}: expected '
                            f"('storage', type, key, device, size, view)")
    _, storage_type, key, _, size, view = pid
    if not isinstance(storage_type, _StorageType):
      raise CheckpointError(f'storage {key!r} has unknown type {storage_type!r}')
    if view is not None:
      raise CheckpointError(f'storage {key!r} is a view of another storage, '
                            f'which this reader does not support')
    return _StorageRef(storage_type, str(key), int(size))


_STATE_DICT = 'state dict'


def _load_pickle(stream: BinaryIO, what: str) -> Any:
  try:
    return _RestrictedUnpickler(stream, names_storages=what == _STATE_DICT).load()
  except CheckpointError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    # Any malformed pickle (truncated, wrong opcode, wrong arity) ends here.
    raise CheckpointError(f'cannot read the {what} of a legacy torch checkpoint: '
                          f'{type(error).__name__}: {error}') from error


def _check_header(stream: BinaryIO) -> None:
  if stream.read(2) == b'PK':
    raise CheckpointError('this is a zip-format torch checkpoint (torch 1.6 or '
                          'later), not the legacy format this reader handles')
  stream.seek(0)
  magic = _load_pickle(stream, 'magic number')
  if magic != MAGIC_NUMBER:
    raise CheckpointError(f'magic number {magic!r} is not that of a legacy torch '
                          f'checkpoint ({MAGIC_NUMBER:#x})')
  protocol = _load_pickle(stream, 'protocol version')
  if protocol != PROTOCOL_VERSION:
    raise CheckpointError(f'protocol version {protocol!r}; only '
                          f'{PROTOCOL_VERSION} is supported')
  system = _load_pickle(stream, 'system information')
  if not (isinstance(system, dict) and system.get('little_endian') is True):
    raise CheckpointError(f'only little-endian checkpoints are supported; the '
                          f'file says {system!r}')


def _read_storages(stream: BinaryIO,
                   refs: Dict[str, _StorageRef]) -> Dict[str, np.ndarray]:
  keys = _load_pickle(stream, 'storage key list')
  if not isinstance(keys, list) or set(keys) != set(refs):
    raise CheckpointError('the storage key list does not match the storages '
                          'the tensors name')
  storages = {}
  for key in keys:
    ref = refs[key]
    header = stream.read(8)
    if len(header) != 8:
      raise CheckpointError(f'the file ends before storage {key!r}')
    (count,) = struct.unpack('<q', header)
    if count != ref.size:
      raise CheckpointError(f'storage {key!r} holds {count} elements, the '
                            f'tensors say {ref.size}')
    nbytes = count * ref.storage_type.dtype.itemsize
    data = stream.read(nbytes)
    if len(data) != nbytes:
      raise CheckpointError(f'the file ends inside storage {key!r}')
    storages[key] = np.frombuffer(data, dtype=ref.storage_type.dtype)
  return storages


def _materialise(name: str, tensor: _TensorRef, storage: np.ndarray) -> np.ndarray:
  """Copies the strided view a tensor is of its storage into a new array."""
  if len(tensor.shape) != len(tensor.strides):
    raise CheckpointError(f'tensor {name!r} has shape {tensor.shape} but strides '
                          f'{tensor.strides}')
  if tensor.offset < 0 or any(s < 0 for s in tensor.strides):
    raise CheckpointError(f'tensor {name!r} has a negative offset or stride')
  if 0 in tensor.shape:
    return np.zeros(tensor.shape, storage.dtype)
  last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides))
  if last >= storage.size:
    raise CheckpointError(f'tensor {name!r} reaches element {last} of a storage '
                          f'of {storage.size}')
  view = np.lib.stride_tricks.as_strided(
      storage[tensor.offset:], shape=tensor.shape,
      strides=tuple(s * storage.itemsize for s in tensor.strides), writeable=False)
  return np.array(view, dtype=storage.dtype.newbyteorder('='))


def read_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Tensor name -> array, in the checkpoint's order, from a legacy .pth file."""
  try:
    with open(path, 'rb') as f:
      content = f.read()
  except OSError as error:
    raise CheckpointError(f'cannot read checkpoint {path!r}: {error}') from error
  stream = io.BytesIO(content)
  try:
    _check_header(stream)
    state = _load_pickle(stream, _STATE_DICT)
    if not isinstance(state, dict):
      raise CheckpointError(f'the checkpoint holds a {type(state).__name__}, '
                            f'not a state dict')
    for name, value in state.items():
      if not isinstance(value, _TensorRef):
        raise CheckpointError(f'state dict entry {name!r} is a '
                              f'{type(value).__name__}, not a tensor')
    refs = {t.storage.key: t.storage for t in state.values()}
    storages = _read_storages(stream, refs)
    return collections.OrderedDict(
        (name, _materialise(name, t, storages[t.storage.key]))
        for name, t in state.items())
  except CheckpointError as error:
    raise CheckpointError(f'{path}: {error}') from None
