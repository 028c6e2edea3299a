"""Dump formats read: ELF vmcores, (compressed, flattened, split) kdump, s390 and s390_ext
stand-alone dumps; physical memory, address translation, VMCOREINFO and CPU registers."""
