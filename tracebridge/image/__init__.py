"""The module image: a ``.ko`` (or the kernel) read from ELF and laid out as FreeBSD's kernel linker does.

ELF reading (:mod:`.elf`), the kernel-linker layout (:mod:`.layout`),
relocations (:mod:`.relocs`), module metadata (:mod:`.modmeta`), Rust
demangling (:mod:`.demangle`) and the selection of functions
(:mod:`.select`).  First stage of the flow: imports only
:mod:`tracebridge.support`.
"""
