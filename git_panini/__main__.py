"""`python -m git_panini` runs the CLI, like the `git-panini` script."""

from .cli import main

main()
