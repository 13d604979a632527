"""Bounds that ingestion and serving share, so what is ingested also serves."""

# Images whose header declares more pixels are refused before decoding: a
# decompression bomb is a few KB on disk and gigabytes in memory.
MAX_IMAGE_PIXELS = 50_000_000
