"""Frames, Y4M and any-format input, the raw frame store and the clip registry."""
