"""The store in Git refs: the shared metadata chain, the local store, notes, the chunk index, reading chunks back, the clean filter's journal."""
