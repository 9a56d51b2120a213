"""Small helpers every stage shares: errors and the one-line messages, spooled pipes, printable text, output files, JSON documents, the parallel split and the GC pause.

Imports nothing else from tracebridge: every other subpackage may import it.
"""
