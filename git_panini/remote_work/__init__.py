"""Workers elsewhere: dispatch and its backends (GitHub Actions, webhook), the `serve` server."""
