"""Textual CSS parsed once a process, not once an app.

Textual parses an app's CSS (its ``app.tcss`` and every widget class's ``DEFAULT_CSS``) into
rules each time an app starts, in a cache of that app's own. A ``backchain serve`` session
is a process forked from a warm one (``explorer.serve.forks``) that has already drawn the
overview once (:func:`explorer.tui.rehearsal.rehearse`): with the rules kept here, per
process, a session finds them parsed (a tenth of its CPU to its first screen otherwise).

A rule list is kept by everything its parse depends on: the CSS text, where it was read
from, its place among the sources and the stylesheet's variables (the theme). The rules are
only read once parsed (Textual's own cache hands the same lists to every parse of a
stylesheet), so apps of one process may share them.
"""

from __future__ import annotations

from typing import Any

from textual.css.stylesheet import Stylesheet

#: Parsed rules kept at most (a theme's sources are about 40; a theme change parses anew).
LIMIT = 512

_PARSED: dict[tuple[object, ...], Any] = {}


class SharedStylesheet(Stylesheet):
    """A :class:`Stylesheet` whose parsed sources are kept for every app of the process."""

    _variables_key: tuple[object, tuple[tuple[str, str], ...]] | None = None

    def _variables_of(self) -> tuple[tuple[str, str], ...] | None:
        variables = getattr(self, "_variables", None)
        if not isinstance(variables, dict):
            return None
        known = self._variables_key
        if known is None or known[0] is not variables:
            known = (variables, tuple(sorted(variables.items())))
            self._variables_key = known
        return known[1]

    def _parse_rules(self, *args: Any, **kwargs: Any) -> Any:
        variables = self._variables_of()
        if variables is None:
            return super()._parse_rules(*args, **kwargs)
        key = (args, tuple(sorted(kwargs.items())), variables)
        rules = _PARSED.get(key)
        if rules is None:
            rules = super()._parse_rules(*args, **kwargs)
            if len(_PARSED) >= LIMIT:
                del _PARSED[next(iter(_PARSED))]
            _PARSED[key] = rules
        return rules


def shared(stylesheet: Stylesheet) -> Stylesheet:
    """A :class:`SharedStylesheet` in place of an app's new, still empty ``stylesheet`` (the
    same variables); ``stylesheet`` itself when it is not empty."""
    variables = getattr(stylesheet, "_variables", None)
    if stylesheet.source or not isinstance(variables, dict):
        return stylesheet
    return SharedStylesheet(variables=variables)
