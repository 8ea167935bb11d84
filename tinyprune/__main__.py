"""`python -m tinyprune` is the same as the `tinyprune` command."""

from tinyprune.cli import main

main()
