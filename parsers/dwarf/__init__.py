"""DWARF: the bounded DIE reader with struct search, line programs, LEB128."""
