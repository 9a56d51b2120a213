"""One reader per captured format (DTrace, pmcstat, pmclog, kldstat, folded, bundles), the registry that detects and loads them, and module placement.

Each reader turns captured text into a :class:`tracebridge.profile.model.Profile`.
A new input format is a module here with ``sniff`` and ``read`` and a row in
:data:`.registry.FORMATS`.  May import :mod:`tracebridge.profile`,
:mod:`tracebridge.probes` (probe maps), :mod:`tracebridge.image` and
:mod:`tracebridge.support`; never a renderer or the CLI.
"""
