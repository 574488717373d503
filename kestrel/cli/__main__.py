"""`python -m kestrel.cli` == `kestrel`."""

from kestrel.cli import main

main()
