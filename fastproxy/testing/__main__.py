"""``python -m fastproxy.testing``: run the mock OpenAI Realtime upstream (``--help``)."""

import sys

from .mock_upstream import main

sys.exit(main())
