"""The server's own small pages: refused (no token), full (session limit), and the
trainer's results."""

from __future__ import annotations

from html import escape
from typing import Any

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


def foreign_page() -> str:
    """A request naming another host or coming from another site's page."""
    return page(
        "foreign",
        "This classroom answers only its own address",
        "Open the address your trainer gave you, as it was given (not through another page "
        "or another name).",
    )


_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{static}css/xterm.css">
<script src="{static}js/textual.js"></script>
<style>
@font-face {{ font-family: "Roboto Mono"; font-style: normal;
  src: url("{static}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }}
@font-face {{ font-family: "Roboto Mono"; font-style: italic;
  src: url("{static}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }}
body {{ background: #0c181f; margin: 0; }}
.notice {{ position: absolute; inset: 0; display: flex; align-items: center;
  justify-content: center; z-index: 10; }}
.notice div {{ padding: 2em 3em; background: #12232d; color: #e6edf3;
  font: 16px "Roboto Mono", monospace; text-align: center; }}
.notice button {{ margin-top: 1em; padding: 0.8em 2em; border: none; background: #5e0ba7;
  color: #fff; font: inherit; cursor: pointer; }}
body.-first-byte #starting, #ended, #start {{ display: none; }}
#start.-delay {{ display: inline-block; }}
body.-closed #ended {{ display: flex; }}
.textual-terminal {{ opacity: 0; }}
body.-first-byte .textual-terminal {{ opacity: 1; }}
</style></head>
<body>
<div class="notice" id="starting"><div>{name}<br>starting...
<button type="button" id="start" onclick="location.reload()">Start</button></div></div>
<div class="notice" id="ended"><div>Session ended.<br>
<button type="button" onclick="location.reload()">Restart</button></div></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{websocket}"
 data-font-size="{font_size}"></div>
</body></html>
"""


def index_page(title: str, static_url: str, websocket_url: str, font_size: int) -> str:
    """The page that runs one session: textual-serve's terminal (its own script, styles and
    font, all from this server: nothing from elsewhere, so it works offline)."""
    return _INDEX.format(
        title=escape(title),
        name=escape(title),
        static=escape(static_url),
        websocket=escape(websocket_url),
        font_size=int(font_size),
    )


_RESULTS = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>backchain: exercise results</title>
<meta http-equiv="refresh" content="15">
<style>
body {{ background: #0c181f; color: #e6edf3; font-family: monospace; margin: 2em; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.1em; margin-top: 1.6em; color: #ffd866; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.2em 0.9em; border-bottom: 1px solid #24404f; }}
th {{ color: #9fb3c0; font-weight: normal; }}
tr.untried td {{ color: #7d8b94; }}
</style></head>
<body><main id="results"><h1>Exercise results</h1><p>{intro}</p>{tables}
<p>(this page reloads every 15 seconds)</p></main></body></html>
"""


def results_page(report: Any) -> str:
    """The trainer's results (``explorer.training.results.Report``) as a page; every cell escaped
    (trainees type their names)."""
    parts = []
    for table in report.tables():
        head = "".join(f"<th>{escape(h.lower())}</th>" for h in table.head)
        rows = []
        for row in table.rows:
            kind = ' class="untried"' if row[-1] == "not tried" else ""
            rows.append(f"<tr{kind}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        parts.append(f"<h2>{escape(table.title)}</h2><table><tr>{head}</tr>{''.join(rows)}</table>")
    return _RESULTS.format(intro=escape(report.intro), tables="".join(parts))
