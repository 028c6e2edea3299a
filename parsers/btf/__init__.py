"""BTF: the kernel's compact type format, read and checked."""
