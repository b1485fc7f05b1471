"""Where Git calls us: the clean/smudge filter, the writer and the materializer, textconv, the merge driver, the hooks' logic."""
