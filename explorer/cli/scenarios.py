"""``backchain scenarios``: training scenarios, one lesson each."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    json_flag,
    print_json,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("scenarios", help="training scenarios: small dumps, one lesson each")
    actions = p.add_subparsers(dest="scenarios_command", metavar="ACTION")
    a = actions.add_parser("list", help="the catalog: name, rules, title, expected verdict")
    json_flag(a)
    a = actions.add_parser("show", help="a scenario's story and what to look for")
    a.add_argument("name", help="scenario name (see 'backchain scenarios list')")
    a.add_argument("--answer", action="store_true", help="also print the expected verdict")
    json_flag(a)
    a = actions.add_parser("build", help="write a scenario's vmcore, System.map and profile")
    a.add_argument("name", help="scenario name")
    a.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    a.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    a = actions.add_parser("open", help="build a scenario into the cache and open the explorer")
    a.add_argument("name", help="scenario name")
    p.set_defaults(handler=cmd_scenarios)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``backchain scenarios ACTION``: list, show, build or open a training scenario."""
    from samples import scenarios

    action = args.scenarios_command or "list"
    if action == "list":
        if getattr(args, "json", False):
            print_json(
                [
                    {
                        "name": s.name,
                        "title": s.title,
                        "era": s.era,
                        "release": s.release,
                        "pid": s.pid,
                        "expected": s.answer.label,
                        "answer": s.answer.to_json(),
                    }
                    for s in scenarios.SCENARIOS
                ]
            )
            return EXIT_OK
        width = max(len(s.name) for s in scenarios.SCENARIOS)
        verdicts = [
            s.answer.label + ("" if s.answer.frame is None else f" at #{s.answer.frame}")
            for s in scenarios.SCENARIOS
        ]
        vw = max(len("EXPECTED VERDICT"), *(len(v) for v in verdicts))
        print(f"{'NAME':<{width}}  {'RULES':<7}  {'EXPECTED VERDICT':<{vw}}  TITLE")
        for s, verdict in zip(scenarios.SCENARIOS, verdicts, strict=True):
            print(f"{s.name:<{width}}  {s.era:<7}  {verdict:<{vw}}  {s.title}")
        return EXIT_OK
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
        print(f"built scenario {scenario.name} ({scenario.era} rules, {scenario.release})")
        print(f"  {dump}  {dump.parent / 'System.map'}  {dump.parent / 'profile.json'}")
        print("next:")
        print(f"  backchain scenarios show {scenario.name}     # the story")
        print(f"  backchain bt {dump} --pid {scenario.pid}")
        print(f"  backchain bt {dump} --pid {scenario.pid} --markdown")
        print(f"  backchain check {dump} --all")
        print(f"  backchain {dump}     # the explorer")
        return EXIT_OK
    return _open_scenario(scenario)


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


def _open_scenario(scenario: Any) -> int:
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
        return cli.run_tui(args)
    print(f"(the explorer is not available; bt of pid {scenario.pid} in {dump})")
    from explorer.cli import build_parser
    from explorer.cli.bt import cmd_bt

    return cmd_bt(build_parser().parse_args(["bt", str(dump), "--pid", str(scenario.pid)]))
