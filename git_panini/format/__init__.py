"""The data format, as bytes: pointer, manifest, recipe, chunking and the structure scanners that cut on file formats, segments, hashing."""
