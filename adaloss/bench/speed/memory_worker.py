"""``python -m adaloss.bench.speed.memory_worker CONFIG_JSON``: one memory measurement.

Started by :func:`adaloss.bench.speed.memory.memory_in_subprocess` in a fresh process;
prints the result after a marker line prefix.
"""

import sys

from adaloss.bench.speed.memory import _memory_worker_main

if __name__ == "__main__":
    sys.exit(_memory_worker_main(sys.argv[1:]))
