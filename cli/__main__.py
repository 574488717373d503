"""`python -m cli` == `kestrel`."""

from cli import main

main()
