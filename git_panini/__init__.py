"""git-panini: large files stored in Git itself as deduplicated, recompressible chunk trees."""

__version__ = "0.1.0"
