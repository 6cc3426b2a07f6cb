"""`feedwatch explain ID`: why an alert was made, or why an item did or did not alert.

ID is an alert id (or a unique prefix of one), an item id (a number, as ``explain`` and ``--json``
outputs show) or an item's URL. Rules that fired are shown as the alert policy recorded them when the
item came in; rules that did not are scored again, now, on the item's stored text.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from daemon.cli.common import load, show
from daemon.cli.exitcodes import ExitCode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser("explain", help="why an alert was made, or why an item did or did not alert")
    ex.add_argument("ident", metavar="ID", help="an alert id (or a unique prefix), an item id, or an item's URL")
    ex.add_argument("--json", action="store_true", help="one JSON document (a list when a URL names several items)")
    ex.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from daemon.service.explain import Explainer
    from daemon.store.controls import AmbiguousId
    from daemon.store.sqlite import Store

    config = load(args, secrets=False)
    store = Store(config.store.path, readonly=True, busy_timeout=config.store.busy_timeout)
    try:
        docs = Explainer(config, store).explain(args.ident)
    except AmbiguousId as exc:
        show(f"feedwatch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        store.close()
    if not docs:
        show(f"feedwatch: no alert, item id or item URL {args.ident!r} in {config.store.path}", file=sys.stderr)
        return ExitCode.USAGE
    if args.json:
        out: Any = docs[0] if len(docs) == 1 else docs
        show(json.dumps(out, indent=2, ensure_ascii=False))
        return ExitCode.OK
    from daemon.alerting.explain import render

    show("\n\n".join(render(d) for d in docs))
    return ExitCode.OK
