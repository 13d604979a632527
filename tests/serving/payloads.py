"""Encoded images, good and bad, as clients may send them."""

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.fixtures import synthetic_busi


def scan(seed: int = 0, label: str = 'malignant') -> np.ndarray:
  image, _ = synthetic_busi.make_image(label, np.random.default_rng(seed))
  return image


def encode(pixels: np.ndarray, image_format: str = 'PNG', mode: str = 'L') -> bytes:
  buffer = io.BytesIO()
  image = Image.fromarray(pixels)
  if mode == 'I;16':
    image = Image.fromarray(pixels.astype(np.uint16) * 257)
  elif mode != 'L':
    image = image.convert(mode)
  image.save(buffer, format=image_format)
  return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
  """A PNG signature and IHDR chunk (8-bit gray) declaring width x height, no pixels."""
  ihdr = b'IHDR' + struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
  return (b'\x89PNG\r\n\x1a\n' + struct.pack('>I', 13) + ihdr +
          struct.pack('>I', zlib.crc32(ihdr)))


def jpeg_declaring(width: int, height: int) -> bytes:
  """A real JPEG whose frame header (SOF0) is edited to declare width x height."""
  jpeg = bytearray(encode(scan(), 'JPEG'))
  sof = jpeg.index(b'\xff\xc0')
  jpeg[sof + 5:sof + 9] = struct.pack('>HH', height, width)
  return bytes(jpeg)


def bad_payloads():
  """(name, bytes, what the error message must say) for every rejected kind."""
  png = encode(scan())
  return [
      ('empty', b'', 'expected PNG or JPEG bytes, got 0 bytes'),
      ('not_an_image', b'%PDF-1.4 not an image', 'expected PNG or JPEG bytes'),
      ('truncated_png_header', png[:20], 'PNG header'),
      ('truncated_png_pixels', png[:len(png) // 2], 'Invalid PNG data'),
      ('huge_png', png_header(20000, 20000), '20000x20000 pixels'),
      ('huge_jpeg', jpeg_declaring(20000, 20000), '20000x20000 pixels'),
  ]
