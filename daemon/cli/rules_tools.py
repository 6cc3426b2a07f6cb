"""`feedwatch score` and `feedwatch backtest`: try rules on text, feeds or labelled sets — nothing is sent."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.cli.backtest_report import json_report, text_report
from daemon.cli.common import load
from daemon.cli.exitcodes import ExitCode
from daemon.config.model import Config
from daemon.errors import ConfigError, FetchError
from daemon.intake.parse import parse_feed
from daemon.models import FIELDS, hit_to_dict
from daemon.rules.backtest import Case, apply_labels, highlight, item_from, measure, measure_any, parse_jsonl
from daemon.rules.load import load_rules
from daemon.rules.matcher import Evaluation, Matcher
from daemon.rules.misses import by_language, by_reason, find_misses


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    score = sub.add_parser("score", help="score text, a feed or JSONL items against the rules and explain")
    score.add_argument("source", nargs="?", help="feed file or URL, or a .jsonl of items")
    score.add_argument("--title", default=None, help="score this title (instead of SOURCE)")
    score.add_argument("--summary", default="", help="summary text scored with --title")
    score.add_argument("--content", default="", help="body text scored with --title")
    score.add_argument("--rules", help="rules folder (default: the configured one)")
    score.add_argument("--all", action="store_true", help="also show rules that did not fire")
    score.add_argument("--json", action="store_true", help="print only JSON on stdout")
    score.set_defaults(func=cmd_score)

    bt = sub.add_parser("backtest", help="run rules over items; with labels, precision and recall")
    bt.add_argument("source", help="feed file or URL, or a .jsonl of items (with optional labels)")
    bt.add_argument(
        "--labels",
        help="JSONL of {id, labels: {rule: true/false}, label: 1/0, lang} adding to or overriding the items' labels",
    )
    bt.add_argument("--default-lang", metavar="NAME", help="language of items that name none (default: unknown)")
    bt.add_argument("--rules", help="rules folder (default: the configured one)")
    bt.add_argument("--json", action="store_true", help="print only JSON on stdout")
    bt.set_defaults(func=cmd_backtest)


def _matcher(config: Config, rules: str | None) -> Matcher:
    report = load_rules(Path(rules) if rules else config.rules_dir, channels=list(config.channels))
    if report.errors:
        raise report.errors[0]
    return Matcher(report.ruleset)


def _read_jsonl(source: str) -> list[Case]:
    """Cases from a JSONL file; its warnings (unknown keys) go to stderr."""
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=source) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=source) from None
    parsed = parse_jsonl(text, source)
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return parsed.cases


def _cases(config: Config, source: str) -> list[Case]:
    if source.endswith(".jsonl"):
        return _read_jsonl(source)
    if source.startswith(("http://", "https://")):
        body, ctype = asyncio.run(_download(config, source))
    else:
        path = Path(source.removeprefix("file://"))
        try:
            body, ctype = path.read_bytes(), None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    parsed = parse_feed(body, feed="cli", url=source, content_type=ctype)
    return [Case(i.guid or i.key, i) for i in parsed.items]


async def _download(config: Config, url: str) -> tuple[bytes, str | None]:
    from daemon.intake.fetch import Fetcher, FetchSettings, make_client

    settings = FetchSettings(max_bytes=config.polling.max_bytes, total_timeout=config.polling.total_timeout)
    async with make_client(settings) as client:
        result = await Fetcher(client, settings).fetch(url, allow_private=config.polling.allow_private)
    assert result.body is not None
    return result.body, result.content_type


def _explain(case: Case, evaluations: Sequence[Evaluation], show_all: bool, color: bool) -> list[str]:
    on, off = ("\033[1;33m", "\033[0m") if color else ("[", "]")
    lines = [f"• {case.item.title or '(untitled)'}  ({case.id})"]
    for ev in evaluations:
        if not ev.fired and not show_all:
            continue
        verdict = f"FIRES {ev.severity}" if ev.fired else "no"
        lines.append(f"  {ev.rule_id}: {verdict}, score {ev.score:g} (threshold {ev.threshold:g})")
        # Failures (why it did not fire), then notes (what the language did), never the verdict line.
        notes = ev.reasons[len(ev.failures) : len(ev.reasons) - (1 if ev.fired else 0)]
        lines += [f"    - {f.message}" for f in ev.failures]
        lines += [f"    note: {n}" for n in notes]
        for name in FIELDS:
            text = case.item.field_text(name)
            if text and any(h.field == name for h in ev.hits):
                lines.append(f"    {name}: {highlight(text, ev.hits, name, start=on, end=off)}")
        terms = {}
        for h in ev.hits:
            if h.contribution:
                fuzzy = f" ≈{h.fuzzy:.0f}" if h.fuzzy is not None else ""
                terms[h.term] = f"{h.text}{fuzzy} ({h.group}, {h.field}, {h.contribution:+g})"
        if terms:
            lines.append(f"    counted: {' · '.join(terms.values())}")
    return lines


def _as_json(case: Case, evaluations: Sequence[Evaluation]) -> dict[str, Any]:
    return {
        "id": case.id,
        "title": case.item.title,
        "rules": [
            {
                "rule": e.rule_id,
                "fired": e.fired,
                "score": e.score,
                "severity": str(e.severity) if e.fired else None,
                "hits": [hit_to_dict(h) for h in e.hits],
                "reasons": list(e.reasons),
            }
            for e in evaluations
        ],
    }


def cmd_score(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    matcher = _matcher(config, args.rules)
    if args.title is not None:
        cases = [Case("cli", item_from({"title": args.title, "summary": args.summary, "content": args.content}, "cli"))]
    elif args.source:
        cases = _cases(config, args.source)
    else:
        print("feedwatch: score needs --title (and --summary) or a SOURCE", file=sys.stderr)
        return ExitCode.USAGE
    results = [(c, matcher.evaluate(c.item, feed_tags=c.tags)) for c in cases]
    if args.json:
        print(json.dumps([_as_json(c, evs) for c, evs in results], indent=2, ensure_ascii=False))
        return ExitCode.OK
    color = sys.stdout.isatty()
    show_all = args.all or len(cases) == 1
    for case, evs in results:
        print("\n".join(_explain(case, evs, show_all, color)))
    fired = sum(1 for _, evs in results if any(e.fired for e in evs))
    print(f"\n{fired} of {len(cases)} items would alert")
    return ExitCode.OK


def cmd_backtest(args: argparse.Namespace) -> int:
    config = load(args, secrets=False)
    matcher = _matcher(config, args.rules)
    try:
        cases = _cases(config, args.source)
    except FetchError as exc:
        print(f"feedwatch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.labels:
        cases, warnings = apply_labels(cases, _read_jsonl(args.labels))
        for warning in warnings:
            print(f"warning: {args.labels}: {warning}", file=sys.stderr)
    if args.default_lang:
        cases = [c if c.lang else dataclasses.replace(c, lang=args.default_lang) for c in cases]
    results = [(c, matcher.evaluate(c.item, feed_tags=c.tags, all_rules=True)) for c in cases]
    stats = measure(matcher.ruleset.ids, results)
    any_stats = measure_any(results)
    misses = find_misses(results)
    report = (cases, stats, any_stats, misses, by_reason(misses), by_language(results))
    if args.json:
        print(json.dumps(json_report(*report), indent=2, ensure_ascii=False))
    else:
        print("\n".join(text_report(*report)))
    return ExitCode.OK
