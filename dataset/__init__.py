"""Plain data libraries the components use: image files, hashes, splits, the audit."""
