"""Whole-repository operations a user runs: verify, fsck, prune, migrate, the demo."""
