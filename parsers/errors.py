"""The one exception family of backchain.

Every reader turns the errors of construct, pyelftools, zstandard and the OS into one of
these, with a message a user can act on. The CLI prints ``str(error)`` on one line and
exits with status 2; the TUI shows it in place.
"""

from __future__ import annotations


class DumpError(Exception):
    """Base class: something about the input cannot be used.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file concerned, if any; it prefixes the message.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def with_path(self, path: str) -> DumpError:
        """Name ``path`` in this error if it names no file yet; return the error."""
        if not self.path:
            self.path = path
            self.args = (f"{path}: {self.message}",)
        return self


class FormatError(DumpError):
    """The file is not a dump this tool reads, or its structure is damaged."""


class TruncatedError(FormatError):
    """The file ends before a structure it declares."""


class UnmappedError(DumpError):
    """A physical address has no bytes in the dump (a hole or an excluded page)."""

    def __init__(self, address: int, message: str | None = None, path: str | None = None):
        self.address = address
        super().__init__(message or f"physical address 0x{address:x} is not in the dump", path)


class TranslationError(DumpError):
    """A virtual address cannot be translated to a physical one."""

    def __init__(self, address: int, message: str, path: str | None = None):
        self.address = address
        super().__init__(message, path)


class SymbolError(DumpError):
    """A symbol file is unreadable, or a required symbol is missing."""


class TypeInfoError(DumpError):
    """A struct offset or size the tool needs is not known from any type source."""


class MismatchError(DumpError):
    """A symbol file, vmlinux or type profile belongs to another kernel than the dump's.

    Attributes:
        evidence: what contradicts it, in one line.
    """

    evidence: str = ""
