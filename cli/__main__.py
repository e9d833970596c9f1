"""`python -m kvstore_cli` runs the kv command."""

from .main import main

main()
