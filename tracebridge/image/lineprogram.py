"""A DWARF line number program run straight from the section bytes (DWARF 2 to 5, section 6.2).

pyelftools reads the header (file and directory tables, whose DWARF 5 form
is the intricate part) and would also run the program, building a
``construct`` container and a state copy per row: a quarter of the index's
build time on an optimised module.  The opcodes are few and fixed, so they
are run here; only what the index keeps is tracked (address, file, line,
end of sequence; not columns, ISA or discriminators).  ``op_index`` is
ignored: ``maximum_operations_per_instruction`` is 1 on every target
FreeBSD builds modules for (it matters for VLIW only).  A program running
off the end of its section is a ``ValueError`` (the unit is then skipped
with a warning).
"""

from __future__ import annotations

from collections.abc import Callable

from tracebridge.image.dwarfbytes import ByteReader


def run_line_program(data: bytes, start: int, end: int, header, little_endian: bool,
                     row: Callable[[int, int, int, bool], None]) -> None:
    """Call ``row(address, file, line, end_sequence)`` for every row of the program in ``data[start:end]``."""
    if end > len(data):
        raise ValueError("line program runs past the end of .debug_line")
    minimum = header["minimum_instruction_length"]
    line_base, line_range, opcode_base = header["line_base"], header["line_range"], header["opcode_base"]
    if line_range == 0:
        raise ValueError("line program header has line_range 0")
    lengths = list(header["standard_opcode_lengths"])
    const_add = ((255 - opcode_base) // line_range) * minimum
    reader = ByteReader(data, start, end, little_endian, "a line program")
    uleb = reader.uleb
    address, file, line = 0, 1, 1  # is_stmt is not tracked: every row counts, as pyelftools gave them
    while reader.offset < end:
        opcode = reader.byte()
        if opcode >= opcode_base:  # special opcode: advance address and line, add a row
            adjusted = opcode - opcode_base
            address += (adjusted // line_range) * minimum
            line += line_base + adjusted % line_range
            row(address, file, line, False)
        elif opcode == 0:  # extended opcode
            length = uleb()
            after = reader.offset + length
            if length == 0 or after > end:
                raise ValueError("an extended line opcode runs past the program's end")
            sub = reader.byte()
            if sub == 1:  # DW_LNE_end_sequence
                row(address, file, line, True)
                address, file, line = 0, 1, 1
            elif sub == 2:  # DW_LNE_set_address
                address = reader.unsigned(after - reader.offset)
            reader.offset = after  # define_file, set_discriminator, vendor opcodes: nothing the index keeps
        elif opcode == 1:  # DW_LNS_copy
            row(address, file, line, False)
        elif opcode == 2:  # DW_LNS_advance_pc
            address += uleb() * minimum
        elif opcode == 3:  # DW_LNS_advance_line
            line += reader.sleb()
        elif opcode == 4:  # DW_LNS_set_file
            file = uleb()
        elif opcode == 8:  # DW_LNS_const_add_pc
            address += const_add
        elif opcode == 9:  # DW_LNS_fixed_advance_pc: a uhalf, not scaled
            address += reader.unsigned(2)
        else:  # set_column, negate_stmt, basic_block, prologue_end, epilogue_begin, set_isa, unknown ones
            for _ in range(lengths[opcode - 1] if opcode - 1 < len(lengths) else 0):
                uleb()
