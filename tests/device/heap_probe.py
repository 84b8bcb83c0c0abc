"""MicroPython: the heap each module keeps once imported (run by test_micropython.py).

    micropython -X heapsize=1M tests/device/heap_probe.py <dir> [<dir> ...] -- <module> ...

The dirs go first on sys.path (the .mpy bundle, or <root>/sdk for source). Modules are
imported in the order given, so list a module's dependencies before it: each line then
charges a module only for what it adds. For each module it prints

    module <name> heap <bytes>

followed by the output of ``micropython.qstr_info()`` ("qstr pool: n_pool=.., n_qstr=..,
n_str_data_bytes=.., n_total_bytes=.."). The caller parses both: interned names live in
pools that grow by doubling, so one import may pay for a whole new pool that later imports
fill; knowing the pool bytes lets the report show code and names apart. The last line is
"total heap <bytes>". Not named *_mp.py: it is a measuring tool, not a test script.
"""

import gc
import sys

import micropython

_i = sys.argv.index("--")
for _d in reversed(sys.argv[1:_i]):
    sys.path.insert(0, _d)
gc.collect()
start = prev = gc.mem_alloc()
micropython.qstr_info()
for name in sys.argv[_i + 1 :]:
    __import__(name)
    gc.collect()
    now = gc.mem_alloc()
    print("module", name, "heap", now - prev)
    micropython.qstr_info()
    prev = now
print("total heap", prev - start)
