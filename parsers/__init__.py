"""Bytes in, typed records out: schemas, dump readers, address translation, symbols, types.

Nothing in this package imports ``explorer``, ``textual`` or ``rich``.
"""
