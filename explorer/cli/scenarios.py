"""``backchain scenarios``: training scenarios, one lesson each."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    json_flag,
    print_json,
    results_option,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("scenarios", help="training scenarios: small dumps, one lesson each")
    actions = p.add_subparsers(dest="scenarios_command", metavar="ACTION")
    a = actions.add_parser(
        "list", help="the catalog by exercise number (names and answers: --answers)"
    )
    a.add_argument(
        "--answers",
        action="store_true",
        help="also each name, title and expected verdict (trainers only: the name tells)",
    )
    json_flag(a)
    a = actions.add_parser("show", help="what happened to an exercise's machine")
    a.add_argument("name", help="exercise number or scenario name (see 'backchain scenarios list')")
    a.add_argument(
        "--answers",
        "--answer",
        dest="answer",
        action="store_true",
        help="also its name, story and expected verdict",
    )
    json_flag(a)
    a = actions.add_parser("build", help="write a scenario's vmcore, System.map and profile")
    a.add_argument("name", help="scenario name")
    a.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    a.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    json_flag(a)
    a = actions.add_parser(
        "open",
        help="build a scenario into the cache and open it in exercise mode (no NAME: a picker)",
    )
    a.add_argument("name", nargs="?", help="scenario name (default: pick one in the explorer)")
    a.add_argument("--only", metavar="NAME,...", help="the picker offers only these scenarios")
    results_option(a)
    a = actions.add_parser(
        "results", help="summarize an exercise results file per scenario and per trainee"
    )
    a.add_argument("file", help="the file 'backchain serve --results' (or --results) wrote")
    a.add_argument(
        "--scenarios",
        metavar="NAME,...",
        help="the scenarios the classroom offered (default: the whole catalog), listed even "
        "when nobody tried them",
    )
    json_flag(a)
    a.add_argument("--markdown", action="store_true", help="Markdown tables")
    p.set_defaults(handler=cmd_scenarios)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``backchain scenarios ACTION``: list, show, build or open a training scenario."""
    from explorer.training import scenarios

    action = args.scenarios_command or "list"
    answers = bool(getattr(args, "answers", False))
    if action == "list":
        return _list(answers, getattr(args, "json", False))
    if action == "results":
        return _results(args)
    if action == "open" and args.name is None:
        return _open_picker(args)
    scenario = scenarios.get(args.name)
    if action == "show":
        if args.json:  # the number first (a livepatch exercise's does not know it)
            shown = scenario.to_json(answer=args.answer)
            print_json({"exercise": scenarios.number(scenario.name), **shown})
            return EXIT_OK
        print("\n".join(_scenario_text(scenario, args.answer)))
        return EXIT_OK
    if action == "build":
        import os

        if os.path.isdir(args.output) and os.listdir(args.output) and not args.force:
            raise DumpError("is not empty; pass --force to write the scenario into it", args.output)
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise DumpError("exists and is not a folder", args.output)
        dump = scenario.build(args.output)
        number = scenarios.number(scenario.name)
        klp = getattr(scenario, "kind", "") == "klp"
        files = [dump, *(dump.parent / n for n in ("System.map.zst",) if klp)]
        if not klp:
            files += [dump.parent / "System.map", dump.parent / "profile.json"]
        if args.json:
            doc: dict[str, object] = {
                "exercise": number,
                "era": scenario.era,
                "release": scenario.release,
                "pid": scenario.pid,
                "files": [str(f) for f in files],
            }
            print_json(doc)
            return EXIT_OK
        print(f"built exercise {number} ({scenario.era} rules, {scenario.release})")
        print("  " + "  ".join(str(f) for f in files))
        print("next:")
        print(f"  backchain scenarios show {number}     # what happened")
        if klp:  # 'klp DUMP' is the answer: not offered here
            print(f"  backchain ps {dump}")
            print(f"  backchain bt {dump} --pid PID")
        else:
            print(f"  backchain bt {dump} --pid {scenario.pid}")
            print(f"  backchain bt {dump} --pid {scenario.pid} --markdown")
            print(f"  backchain check {dump} --all")
        print(f"  backchain {dump}     # the explorer")
        return EXIT_OK
    return _open_scenario(scenario, args.results)


def _list(answers: bool, as_json: bool) -> int:
    """``scenarios list``: by exercise number, kernel and rules; names, titles and expected
    verdicts only with ``--answers`` (a name such as ``misaligned-sp`` is the answer)."""
    from explorer.training import scenarios

    catalog = scenarios.CATALOG
    if as_json:
        docs: list[dict[str, Any]] = []
        for number, s in enumerate(catalog, 1):
            doc: dict[str, Any] = {"exercise": number, "era": s.era, "release": s.release}
            doc["pid"] = s.pid
            if answers:
                doc |= {"name": s.name, "title": s.title, "expected": s.answer.label}
                doc["answer"] = s.answer.to_json()
            docs.append(doc)
        print_json(docs)
        return EXIT_OK
    rows = []
    for number, s in enumerate(catalog, 1):
        row = [str(number), s.era, s.release, "any" if s.pid is None else str(s.pid)]
        if answers:
            frame = "" if s.answer.frame is None else f" at #{s.answer.frame}"
            row += [s.name, s.answer.label + frame, s.title]
        rows.append(tuple(row))
    head: tuple[str, ...] = ("EXERCISE", "RULES", "KERNEL", "PID")
    if answers:
        head += ("NAME", "EXPECTED VERDICT", "TITLE")
    print("\n".join(_text_table(head, rows)))
    if not answers:
        print(
            "(open one: backchain scenarios open N; names, titles and expected verdicts, for "
            "trainers: backchain scenarios list --answers)",
            file=sys.stderr,
        )
    return EXIT_OK


def _open_picker(args: argparse.Namespace) -> int:
    """``scenarios open`` without a name: the explorer's scenario picker."""
    from explorer.cli.common import check_results_file
    from explorer.model.kernel import Options
    from explorer.training import scenarios
    from explorer.tui.app import run

    offered = list(scenarios.CATALOG)
    if args.only:
        offered = [scenarios.get(name) for name in args.only.split(",") if name]
    if not offered:
        raise DumpError("--only names no scenario")
    if args.results is not None:
        check_results_file(args.results)
    return run(None, Options(), picker=offered, results=args.results)


def _scenario_text(scenario: Any, answer: bool) -> list[str]:
    """``scenarios show``: without ``answer`` the exercise's number, kernel, task and
    situation, which tell nothing of the verdict; with it the name, story and answer."""
    import textwrap

    from explorer.training import scenarios

    number = scenarios.number(scenario.name)
    klp = getattr(scenario, "kind", "") == "klp"
    task = (
        "find the task that blocks the livepatch transition"
        if klp
        else (f"examine pid {scenario.pid}")
    )
    lines = [
        f"exercise {number} of {len(scenarios.CATALOG)}: rules {scenario.era}, kernel "
        f"{scenario.release}; {task}",
        "",
        *textwrap.wrap(scenario.situation, 96),
    ]
    if answer:
        a = scenario.answer
        lines += [
            "",
            f"{scenario.name}: {scenario.title}",
            "",
            *textwrap.wrap(scenario.story, 96),
            "",
            "What to look for:",
            *textwrap.wrap(scenario.look_for, 96, initial_indent="  ", subsequent_indent="  "),
            "",
        ]
        if klp:
            from explorer.training.klp import answer_markdown

            lines.append("The kernel's answer:")
            text = answer_markdown(scenario).replace("`", "")  # Markdown, as plain text
            lines += ["  " + line.strip().removeprefix("- ") for line in text.splitlines()]
            lines = [line for line in lines if line.strip() or line == ""]
        else:
            lines.append(f"Answer: {a.summary}; the walk ends: {a.end}")
    else:
        lines += ["", f"(the story and the answer: backchain scenarios show {number} --answer)"]
    return lines


def _open_scenario(scenario: Any, results: str | None = None) -> int:
    """Build into the cache's ``scenarios/NAME`` and open the explorer there;
    without the explorer, print ``bt`` of the scenario's task."""
    import importlib.util

    from parsers.cache import cache_dir

    dump = scenario.build(cache_dir("scenarios", scenario.name))
    try:
        has_tui = importlib.util.find_spec("explorer.tui.app") is not None
    except ImportError:
        has_tui = False
    if has_tui:
        from explorer import cli

        args = cli.build_tui_parser().parse_args([str(dump)])
        args.scenario = scenario.name  # for an exercise mode of the explorer
        args.results = results
        return cli.run_tui(args)
    print(f"(the explorer is not available; bt of pid {scenario.pid} in {dump})")
    from explorer.cli import build_parser
    from explorer.cli.bt import cmd_bt

    return cmd_bt(build_parser().parse_args(["bt", str(dump), "--pid", str(scenario.pid)]))


def _results(args: argparse.Namespace) -> int:
    """``scenarios results FILE``: per scenario (those nobody tried too), per trainee (name
    and session), and every trainee's answers."""
    from explorer.training import results, scenarios

    attempts = results.read(args.file)
    report = results.report(
        attempts, results.offered_scenarios(args.scenarios, attempts), scenarios.numbers()
    )
    if args.json:
        print_json({"file": args.file, **report.to_json()})
        return EXIT_OK
    if args.markdown:
        print(f"# Exercise results\n\n{args.file}: {report.intro}")
        for t in report.tables():
            print(f"\n## {t.title}\n")
            print("\n".join(_markdown_table(tuple(h.lower() for h in t.head), list(t.rows))))
        return EXIT_OK
    print(f"{args.file}: {report.intro}")
    for t in report.tables():
        print(f"\n{t.title}:")
        print("\n".join(_text_table(t.head, list(t.rows))))
    return EXIT_OK


def _text_table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    cells = [tuple(str(c) for c in r) for r in [head, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _markdown_table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def line(cells: tuple[Any, ...]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(head), line(tuple("---" for _ in head))] + [line(r) for r in rows]
