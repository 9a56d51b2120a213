"""Per-thread CPU usage: record it, import FreeBSD ``top`` captures, compare runs.

Porting a network driver from C to Rust is judged by how much CPU its kernel
threads (and the load generator's user threads) burn under the same load.
Every source here -- the psutil sampler (:mod:`.sampler`), ``top -bzSHCP``
captures (:mod:`.top`) -- produces the same tidy time series
(:mod:`.series`), so one comparison (:mod:`.stats`, :mod:`.chart`) serves
them all.
"""
