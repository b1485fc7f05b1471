"""Git itself: the repository and its cat-file client, object encoding, packs, pkt-line, tree edits, compare-and-swap refs, durability."""
