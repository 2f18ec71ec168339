"""``python -m fastproxy``: the same command line as the ``fastproxy`` console script."""

import sys

from fastproxy.cli import main

if __name__ == "__main__":
    sys.exit(main())
