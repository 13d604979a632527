"""What a run tells its user: progress lines, and the run read back from ML Metadata."""
