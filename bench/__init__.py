"""gophermirror's benchmark (``make bench``, ``python -m bench``).

Owns: the synthetic hole (``hole``), the C origin and load client it
compiles at run time (``cbuild``, ``origin.c``, ``load.c``), the baselines
(curl through xargs, a bare trio fetch loop), the measured rows (mirror,
update, memory, serving, parsing), and the table and ``bench/results.json``
they produce (``report``).  See docs/benchmarks.md.
Must not touch: the product's modules (it drives them through the CLI and
their public functions only), any address but 127.0.0.1, anything outside
``bench/work/``, ``/dev/shm/gophermirror-bench-*`` and the peer roots of
``tests.peers``.
"""
