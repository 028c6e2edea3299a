"""The server's own small pages: refused (no token), full (session limit)."""

from __future__ import annotations

from html import escape

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>backchain: {title}</title>
<style>
body {{ background: #0c181f; color: #e6edf3; font-family: monospace; margin: 0; }}
main {{ max-width: 44em; margin: 12vh auto; padding: 1.5em 2em; background: #12232d; }}
h1 {{ font-size: 1.3em; }} code {{ color: #ffd866; }}
</style></head>
<body><main id="{kind}"><h1>{title}</h1>{body}</main></body></html>
"""


def page(kind: str, title: str, *paragraphs: str) -> str:
    """A whole HTML page; ``paragraphs`` are plain text (escaped here)."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return _PAGE.format(kind=escape(kind), title=escape(title), body=body)


def refused_page() -> str:
    """No or a wrong token."""
    return page(
        "refused",
        "This classroom needs its token",
        "Open the address your trainer gave you, the one that ends in ?token=...",
    )


def full_page(limit: int) -> str:
    """All sessions are in use."""
    return page(
        "full",
        "The classroom is full",
        ("The one explorer session is" if limit == 1 else f"All {limit} explorer sessions are")
        + " in use. Try again when someone closes theirs (reload this page), or ask your "
        "trainer to raise --max-sessions.",
    )
