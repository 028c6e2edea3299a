"""``backchain scenarios``: training scenarios, one lesson each."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
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
    a = actions.add_parser("list", help="the catalog: name, rules, title (answers: --answers)")
    a.add_argument(
        "--answers", action="store_true", help="also the expected verdict (trainers only)"
    )
    json_flag(a)
    a = actions.add_parser("show", help="a scenario's story and what to look for")
    a.add_argument("name", help="scenario name (see 'backchain scenarios list')")
    a.add_argument(
        "--answers",
        "--answer",
        dest="answer",
        action="store_true",
        help="also print the expected verdict",
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
    json_flag(a)
    a.add_argument("--markdown", action="store_true", help="Markdown tables")
    p.set_defaults(handler=cmd_scenarios)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``backchain scenarios ACTION``: list, show, build or open a training scenario."""
    from explorer.training import scenarios

    action = args.scenarios_command or "list"
    answers = bool(getattr(args, "answers", False))
    if action == "list":
        if getattr(args, "json", False):
            docs: list[dict[str, Any]] = []
            for s in scenarios.SCENARIOS:
                doc: dict[str, Any] = {"name": s.name, "title": s.title, "era": s.era}
                doc["release"] = s.release
                doc["pid"] = s.pid
                if answers:
                    doc |= {"expected": s.answer.label, "answer": s.answer.to_json()}
                docs.append(doc)
            print_json(docs)
            return EXIT_OK
        width = max(len(s.name) for s in scenarios.SCENARIOS)
        verdicts = [
            s.answer.label + ("" if s.answer.frame is None else f" at #{s.answer.frame}")
            for s in scenarios.SCENARIOS
        ]
        vw = max(len("EXPECTED VERDICT"), *(len(v) for v in verdicts))
        head = f"{'EXPECTED VERDICT':<{vw}}  " if answers else ""
        print(f"{'NAME':<{width}}  {'RULES':<7}  {head}TITLE")
        for s, verdict in zip(scenarios.SCENARIOS, verdicts, strict=True):
            shown = f"{verdict:<{vw}}  " if answers else ""
            print(f"{s.name:<{width}}  {s.era:<7}  {shown}{s.title}")
        if not answers:
            print("(the expected verdicts: backchain scenarios list --answers)", file=sys.stderr)
        return EXIT_OK
    if action == "results":
        return _results(args)
    if action == "open" and args.name is None:
        return _open_picker(args)
    scenario = scenarios.get(args.name)
    if action == "show":
        if args.json:
            print_json(scenario.to_json(answer=args.answer))
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
        if args.json:
            print_json(
                {
                    "scenario": scenario.name,
                    "era": scenario.era,
                    "release": scenario.release,
                    "pid": scenario.pid,
                    "files": [
                        str(dump),
                        str(dump.parent / "System.map"),
                        str(dump.parent / "profile.json"),
                    ],
                }
            )
            return EXIT_OK
        print(f"built scenario {scenario.name} ({scenario.era} rules, {scenario.release})")
        print(f"  {dump}  {dump.parent / 'System.map'}  {dump.parent / 'profile.json'}")
        print("next:")
        print(f"  backchain scenarios show {scenario.name}     # the story")
        print(f"  backchain bt {dump} --pid {scenario.pid}")
        print(f"  backchain bt {dump} --pid {scenario.pid} --markdown")
        print(f"  backchain check {dump} --all")
        print(f"  backchain {dump}     # the explorer")
        return EXIT_OK
    return _open_scenario(scenario, args.results)


def _open_picker(args: argparse.Namespace) -> int:
    """``scenarios open`` without a name: the explorer's scenario picker."""
    from explorer.cli.common import check_results_file
    from explorer.model.kernel import Options
    from explorer.training import scenarios
    from explorer.tui.app import run

    offered = list(scenarios.SCENARIOS)
    if args.only:
        offered = [scenarios.get(name) for name in args.only.split(",") if name]
    if not offered:
        raise DumpError("--only names no scenario")
    if args.results is not None:
        check_results_file(args.results)
    return run(None, Options(), picker=offered, results=args.results)


def _scenario_text(scenario: Any, answer: bool) -> list[str]:
    import textwrap

    where = f"running on CPU {scenario.cpu}" if scenario.cpu is not None else "asleep"
    lines = [
        f"{scenario.name}: {scenario.title}",
        f"rules {scenario.era}, kernel {scenario.release}; examine pid {scenario.pid} ({where})",
        "",
        *textwrap.wrap(scenario.story, 96),
        "",
        "What to look for:",
        *textwrap.wrap(scenario.look_for, 96, initial_indent="  ", subsequent_indent="  "),
    ]
    if answer:
        a = scenario.answer
        lines += ["", f"Answer: {a.summary}; the walk ends: {a.end}"]
    else:
        lines += ["", f"(the answer: backchain scenarios show {scenario.name} --answer)"]
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
    """``scenarios results FILE``: per-scenario and per-trainee summaries."""
    from explorer.training import results

    attempts = results.read(args.file)
    per_scenario, per_trainee = results.summarize(attempts)
    if args.json:
        print_json(
            {
                "file": args.file,
                "answers": sum(not a.revealed for a in attempts),
                "reveals": sum(a.revealed for a in attempts),
                "sessions": len({a.session for a in attempts}),
                "scenarios": [asdict(s) for s in per_scenario],
                "trainees": [asdict(t) for t in per_trainee],
            }
        )
        return EXIT_OK
    scenario_rows = [
        (
            s.scenario,
            s.trainees,
            s.solved,
            s.first_try,
            s.revealed,
            s.answers,
            "-" if s.mean_answers_to_solve is None else f"{s.mean_answers_to_solve:g}",
        )
        for s in per_scenario
    ]
    trainee_rows = [
        (t.trainee, t.scenarios, t.solved, t.revealed, t.answers, t.hints) for t in per_trainee
    ]
    scenario_head = (
        "SCENARIO",
        "TRAINEES",
        "SOLVED",
        "FIRST TRY",
        "REVEALED",
        "ANSWERS",
        "ANSWERS TO SOLVE",
    )
    trainee_head = ("TRAINEE", "SCENARIOS", "SOLVED", "REVEALED", "ANSWERS", "HINTS")
    sessions = len({a.session for a in attempts})
    intro = (
        f"{args.file}: {sum(not a.revealed for a in attempts)} answers, "
        f"{sum(a.revealed for a in attempts)} reveals, {len(per_trainee)} trainees, "
        f"{sessions} sessions"
    )
    table = _markdown_table if args.markdown else _text_table
    if args.markdown:
        print(f"# Exercise results\n\n{intro}\n\n## Per scenario\n")
    else:
        print(intro + "\n")
    print("\n".join(table(scenario_head, scenario_rows)))
    print("\n## Per trainee\n" if args.markdown else "")
    print("\n".join(table(trainee_head, trainee_rows)))
    return EXIT_OK


def _text_table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    cells = [tuple(str(c) for c in r) for r in [head, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _markdown_table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def line(cells: tuple[Any, ...]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(tuple(h.lower() for h in head)), line(tuple("---" for _ in head))] + [
        line(r) for r in rows
    ]
