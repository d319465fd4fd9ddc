"""`python -m meterpipe`, the same as the `meterpipe` console script."""

from meterpipe.cli import main

main()
