"""``python -m adaloss.bench.speed``: the same as ``adaloss speed``."""

import sys

from adaloss.bench.speed.run import main

sys.exit(main())
