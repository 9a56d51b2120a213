"""``tracebridge record``: one capture on the FreeBSD target, written as a bundle.

:mod:`.preflight` checks, before anything starts, that the machine can do it
(tools on PATH, root, the module loaded) and reads what the bundle must
record about the machine; :mod:`.tracer` runs dtrace or pmcstat in the
background and stops it the way each tool wants to be stopped;
:mod:`.session` puts them together with the CPU sampler and the workload and
writes the bundle (:mod:`tracebridge.readers.bundle`).
"""
