"""``backchain report`` on every bundled real sample: one 80x24 screen, the panic cause the
guest's console printed (facts.json, from console.log), and Markdown that parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from explorer.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_report_fits_one_screen_and_names_the_panic(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = str(SAMPLES / name / "vmcore.zst")
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    text = _run(capsys, dump)
    lines = text.splitlines()
    assert 5 <= len(lines) <= 23 and max(len(line) for line in lines) <= 80, text
    panic = facts.get("panic")
    if panic:
        assert lines[1].startswith("STOPPED    " + panic["message"])
        head = " <- ".join(panic["functions"][:2])
        assert f"CPU {panic['cpu']}, {panic['comm']}:{panic['pid']}: {head}" in text
        assert "after: " + panic["trigger"] in text
    else:
        assert "STOPPED    no panic" in lines[1]
    for cpu in range(facts["cpus"]):
        assert f"CPU {cpu}: " in text

    doc = json.loads(_run(capsys, dump, "--json"))
    findings = doc["findings"]
    assert findings[0]["id"] == "stopped"
    assert all(f["command"].startswith("backchain ") for f in findings)
    if panic:
        assert findings[0]["data"]["message"] == panic["message"]
        assert findings[0]["data"]["stack"][: len(panic["functions"])] == panic["functions"]

    md = _run(capsys, dump, "--markdown")
    tokens = MarkdownIt().parse(md)
    heads = [t for t in tokens if t.type == "heading_open"]
    assert [t.tag for t in heads] == ["h1"] + ["h2"] * len(findings)
    html = MarkdownIt().render(md)
    if panic:
        assert f"<strong>{panic['message']}</strong>" in html
    assert "sysrq_reset_seq_param_set" in html if panic else True

    full = _run(capsys, dump, "--all")
    assert len(full.splitlines()) >= len(lines)
