"""python -m shmring: look at the channels on this machine and clean up after crashed processes.

    python -m shmring ls            # live channels: kind, endpoints, messages sent
    python -m shmring stat NAME     # one channel's counters and endpoints (--json: as JSON)
    python -m shmring gc            # remove what crashed processes left (--dry-run: only say)
"""

from __future__ import annotations

import argparse
import json
import sys

import shmring


def _ls(args: argparse.Namespace) -> int:
    rows = []
    for name in sorted(shmring.list_channels()):
        try:
            st = shmring.stats(name)
        except (FileNotFoundError, PermissionError, shmring.Error) as error:
            rows.append({"name": name, "error": str(error)})
            continue
        alive = sum(1 for p in st["peers"] if p["alive"])
        rows.append({"name": name, "kind": st["kind"], "lossless": st["lossless"],
                     "endpoints": alive, "sent": st["sent"], "lost": st["lost"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no channels")
        return 0
    print(f"{'NAME':32} {'KIND':7} {'MODE':9} {'ENDPOINTS':>9} {'SENT':>12} {'LOST':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:32} ({r['error']})")
            continue
        mode = "lossless" if r["lossless"] else "-"
        print(f"{r['name']:32} {r['kind']:7} {mode:9} {r['endpoints']:>9} {r['sent']:>12} {r['lost']:>10}")
    return 0


def _stat(args: argparse.Namespace) -> int:
    try:
        st = shmring.stats(args.name)
    except FileNotFoundError:
        print(f"shmring: no channel named {args.name!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    for key, value in st.items():
        if key != "peers":
            print(f"{key:18} {value}")
    print(f"{'peers':18} {len(st['peers'])}")
    for p in st["peers"]:
        state = "alive" if p["alive"] else "dead"
        print(f"  #{p['index']:<3} {p['role']:10} pid {p['pid']:<8} {state:5} sent {p['sent']} "
              f"received {p['received']} lost {p['lost']} lag {p['lag']}")
    return 0


def _gc(args: argparse.Namespace) -> int:
    report = shmring.collect_garbage(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for path in report["removed"] + report["wait_files_removed"]:
            print(f"{verb} {path}")
        for failure in report["failed"]:
            print(f"failed: {failure}", file=sys.stderr)
        for skipped in report["skipped"]:
            print(f"skipped {skipped}")
        print(f"{len(report['removed'])} stale segment(s) {verb}, {report['live']} in use left alone; "
              f"{len(report['wait_files_removed'])} stale descriptor file(s) {verb}")
    return 1 if report["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shmring", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"shmring {shmring.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("ls", help="list the live channels")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=_ls)
    stat = commands.add_parser("stat", help="one channel's counters and endpoints")
    stat.add_argument("name")
    stat.add_argument("--json", action="store_true")
    stat.set_defaults(run=_stat)
    gc = commands.add_parser("gc", help="remove what crashed processes left behind")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--json", action="store_true")
    gc.set_defaults(run=_gc)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
