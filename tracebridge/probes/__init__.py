"""Probes and maps for a module image: FBT's rules per ISA, probe descriptions, D scripts, probe maps, ``inspect`` findings.

Reads the functions of :mod:`tracebridge.image`; may import it and
:mod:`tracebridge.support`, never the capture side (readers, profile,
render).  A new ISA's instruction rules go in :mod:`.fbt_isa`; a new D
template in ``tracebridge/data`` and :mod:`.dscript`.  What libpmcstat reads
instead of a module (:mod:`.pmcimage`, :mod:`.pmcroot`) is made here too.
"""
