"""``python -m adaloss.bench.speed``: the same as ``adaloss speed``."""

import sys

from adaloss.bench.cli import main

sys.exit(main(["speed", *sys.argv[1:]]))
