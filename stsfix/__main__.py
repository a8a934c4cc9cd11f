"""`python -m stsfix`: the same entry point as the `stsfix` console script."""

from stsfix.cli import main

main()
