"""Small helpers every layer may use: sizes and text for terminals, error logs, path patterns, whether a process is alive."""
