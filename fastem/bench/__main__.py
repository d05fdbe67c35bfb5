"""``python -m fastem.bench memory-probe DIR LIBRARY``: the child process of
:func:`fastem.bench.memory.measure_memory`. Run the suite with ``fastem bench``."""
import sys

from fastem.bench.memory import memory_probe

if len(sys.argv) == 4 and sys.argv[1] == "memory-probe":
    memory_probe(sys.argv[2], sys.argv[3])
else:
    sys.exit("usage: python -m fastem.bench memory-probe DIR LIBRARY "
             "(internal; run `fastem bench`)")
