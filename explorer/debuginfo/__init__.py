"""Debug information: what each frame means in the source (function, file:line, inline
functions), from the vmlinux's DWARF (:mod:`parsers.dwarf.lines`)."""
