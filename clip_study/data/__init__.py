"""Data: where images come from (a hub dataset or a folder), decoding them, the subset format the stages
share, and the feature files."""
