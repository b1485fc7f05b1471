"""Files under .git/panini/ through which the filter leaves work for the hooks (the shell hooks test for
them by these names before they start Python)."""

NEEDS_FETCH = "needs-fetch"   # paths a smudge left as pointers: the post-checkout hook fetches and checks them out
LOST = "lost"                 # (path, manifest) lines whose data died with a crashed filter
MISSING = "missing"           # JSON lines: files a checkout left as their pointer text, and why (gitio.unavailable)
REFETCH_ENV = "GIT_PANINI_REFETCHING"   # set by the post-checkout hook's own retry: no second marker, no loop
