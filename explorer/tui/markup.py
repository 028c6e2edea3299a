"""Markup with data in it, built safely: Textual ``Content`` from a template written in this
code, every value (a process name, a symbol, a message: anything from a dump) substituted as
plain text through Textual's ``$name`` template variables, never parsed as markup. (Rich's
``escape`` does not cover Textual's markup: a process name ending in ``[`` broke it.)"""

from __future__ import annotations

from collections.abc import Iterable

from textual.content import Content


def markup(template: str, **values: object) -> Content:
    """``template`` (markup, no data) with each ``$name`` replaced by ``values[name]`` as
    plain text."""
    return Content.from_markup(template, **values)


def join_lines(lines: Iterable[Content | str]) -> Content:
    """``lines`` (Content, or plain text that is not parsed) one under the other."""
    return Content("\n").join(lines)
