"""Moving store data between this clone and a remote: fetch, publish (push), remote state and notes, locks."""
