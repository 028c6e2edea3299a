"""``backchain profile``: the struct offsets backchain needs, saved from a vmlinux."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    json_flag,
    print_json,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("profile", help="save the struct offsets backchain needs from a vmlinux")
    p.add_argument("vmlinux", help="vmlinux with DWARF (e.g. from the -dbg package)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the JSON profile here")
    json_flag(p)
    p.set_defaults(handler=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    """``backchain profile VMLINUX -o FILE``: a few KB instead of a 200 MB vmlinux."""
    import time

    from parsers.types.profile import WANTED, profile_from_dwarf

    started = time.monotonic()
    profile = profile_from_dwarf(args.vmlinux)
    elapsed = time.monotonic() - started
    for note in profile.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output:
        profile.save(args.output)
    if args.json:
        print_json(json.loads(profile.to_json()))
        return EXIT_OK
    print(f"kernel      {profile.release or 'unknown release'}")
    print(f"build-id    {profile.build_id or 'none'}")
    print(f"source      {profile.source} ({elapsed:.1f} s)")
    print(
        f"recorded    {len(profile.offsets)} offsets, {len(profile.sizes)} sizes; "
        f"THREAD_SIZE {profile.sizes.get('thread_union', '?')}, "
        f"sizeof(pt_regs) {profile.sizes.get('pt_regs', '?')}"
    )
    have = sum(1 for alts in WANTED if any(profile.has(a) for a in alts))
    print(
        f"needed      {have} of {len(WANTED)} members found"
        + (f"; missing: {', '.join(profile.missing)}" if profile.missing else "")
    )
    if args.output:
        print(f"written     {args.output} (use it with --profile, or put it beside the dump)")
    return EXIT_OK
