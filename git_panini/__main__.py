"""`python -m git_panini` runs the CLI, like the `git-panini` script."""

from .entry import main

main()
