"""``python -m fastem``: the ``fastem`` command line."""
import sys

from fastem.cli import main

sys.exit(main())
