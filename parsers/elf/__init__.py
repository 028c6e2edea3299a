"""ELF files: sections (build-id, symbols, code), what a file is by its content."""
