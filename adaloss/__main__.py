"""``python -m adaloss`` is the ``adaloss`` command."""

import sys

from adaloss.bench.cli import main

sys.exit(main())
