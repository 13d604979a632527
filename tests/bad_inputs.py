"""Writers of the malformed files real ultrasound exports contain, for tests.

Each writes one file (or link) at `path` and returns the path. The
decompression bomb is a valid PNG header declaring 30000 x 30000 pixels with
almost no data behind it, so nothing large is ever allocated to build it.
"""

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

BOMB_SIDE = 30000


def _speckle(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def _save(image: Image.Image, path: str, **kwargs) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, **kwargs)
  return path


def grey_png(path: str, seed: int = 0, height: int = 40, width: int = 48) -> str:
  return _save(Image.fromarray(_speckle(seed, height, width)), path, format='PNG')


def mask_png(path: str, height: int = 40, width: int = 48) -> str:
  mask = np.zeros((height, width), dtype=np.uint8)
  mask[height // 4:height // 2, width // 4:width // 2] = 255
  return _save(Image.fromarray(mask), path, format='PNG')


def zero_bytes(path: str) -> str:
  return write_bytes(path, b'')


def truncated_png(path: str, seed: int = 1) -> str:
  buffer = io.BytesIO()
  Image.fromarray(_speckle(seed)).save(buffer, format='PNG')
  return write_bytes(path, buffer.getvalue()[:len(buffer.getvalue()) // 2])


def not_an_image(path: str) -> str:
  return write_bytes(path, b'patient export log\nno pixels here\n')


def jpeg_named_png(path: str, seed: int = 2) -> str:
  return _save(Image.fromarray(_speckle(seed)), path, format='JPEG', quality=95)


def sixteen_bit_png(path: str, seed: int = 3) -> str:
  pixels = _speckle(seed).astype(np.uint16) * 257
  return _save(Image.fromarray(pixels), path, format='PNG')


def rgba_png(path: str, seed: int = 4) -> str:
  grey = _speckle(seed)
  alpha = np.full_like(grey, 200)
  return _save(Image.fromarray(np.stack([grey, grey, grey, alpha], -1), 'RGBA'),
               path, format='PNG')


def palette_png(path: str, seed: int = 5) -> str:
  return _save(Image.fromarray(_speckle(seed)).convert('P'), path, format='PNG')


def cmyk_jpeg(path: str, seed: int = 6) -> str:
  grey = _speckle(seed)
  return _save(Image.fromarray(np.stack([grey] * 3, -1)).convert('CMYK'), path,
               format='JPEG', quality=95)


def decompression_bomb(path: str) -> str:
  """A PNG whose IHDR declares BOMB_SIDE x BOMB_SIDE 8-bit grey pixels."""
  def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
  header = struct.pack('>IIBBBBB', BOMB_SIDE, BOMB_SIDE, 8, 0, 0, 0, 0)
  return write_bytes(path, b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                     chunk(b'IDAT', zlib.compress(b'\x00' * 1024)) + chunk(b'IEND', b''))


def write_bytes(path: str, data: bytes) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _png_bytes(seed: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(_speckle(seed)).save(buffer, format='PNG')
  return buffer.getvalue()


def png_with_bad_crc(path: str, seed: int = 10) -> str:
  """A PNG whose pixel chunk's checksum is wrong; PIL reads it anyway."""
  data = bytearray(_png_bytes(seed))
  end_of_idat = data.index(b'IEND') - 4  # IEND's length field follows IDAT's CRC.
  data[end_of_idat - 1] ^= 0xFF
  return write_bytes(path, bytes(data))


def png_without_end(path: str, seed: int = 11, missing: int = 12) -> str:
  """A PNG cut short by `missing` bytes (its IEND chunk is 12); PIL reads it anyway."""
  return write_bytes(path, _png_bytes(seed)[:-missing])
