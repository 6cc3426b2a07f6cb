"""Detection quality of the shipped watch pack on real published news, beside a naive baseline.

Reads ``../shared/realnews/dev.jsonl`` (real headlines and ledes, labelled 0/1 for "news about the
Armenia-Azerbaijan conflict"; override the path with ``FEEDWATCH_REALNEWS_DEV``) and our own written
sets (``tests/data/labelled.jsonl``, ``written.jsonl``, ``written2.jsonl``). An item counts as predicted positive
when ANY shipped rule fires. The baseline fires on any place name of the ``karabakh-places`` list
alone (Karabakh, Artsakh, Stepanakert, Shusha ... in every language the list spells them), run through
the same loader and matcher in the same process.

``python -m benchmarks --only detection`` prints overall, per-language (the language named at the start
of each dev item's ``why``, English otherwise), per-rule and split-half (odd / even id) figures.
``python -m benchmarks.detection --show fn --half odd`` lists the misses of one half, for tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, row
from daemon.models import Item
from daemon.rules.load import load_rules
from daemon.rules.matcher import Matcher
from daemon.rules.ruleset import RuleSet

RULES = REPO / "rules"


def _find_dev() -> Path:
    """``FEEDWATCH_REALNEWS_DEV``, else ``shared/realnews/dev.jsonl`` beside the repo or above it."""
    if env := os.environ.get("FEEDWATCH_REALNEWS_DEV"):
        return Path(env)
    candidates = [d / "shared" / "realnews" / "dev.jsonl" for d in REPO.parents]
    return next((p for p in candidates if p.exists()), candidates[0])


DEV = _find_dev()
WRITTEN = tuple(REPO / "tests" / "data" / name for name in ("labelled.jsonl", "written.jsonl", "written2.jsonl"))
PLACES_LIST = "karabakh-places"
TARGET_PRECISION = 0.92
TARGET_RECALL = 0.85
# Languages a dev item's `why` may start with; anything else there is a topic, and the item is English.
LANGUAGES = frozenset(
    (
        "Arabic", "Armenian", "Azerbaijani", "Bengali", "Bosnian", "Bulgarian", "Chinese", "Croatian", "Czech",
        "Danish", "Dutch", "English", "French", "Georgian", "German", "Greek", "Hebrew", "Hindi", "Hungarian",
        "Icelandic", "Indonesian", "Italian", "Japanese", "Kazakh", "Korean", "Norwegian", "Persian", "Polish",
        "Portuguese", "Romanian", "Russian", "Serbian", "Slovak", "Spanish", "Swedish", "Tagalog", "Turkish",
        "Ukrainian", "Uzbek",
    )
)  # fmt: skip


@dataclass
class Row:
    """One labelled item: its text, the rules expected to fire (written sets) or only the 0/1 label."""

    id: str
    title: str
    summary: str
    label: bool
    language: str
    rule_labels: dict[str, bool] = field(default_factory=dict)
    source: str = ""

    def item(self) -> Item:
        return Item(feed="realnews", key=self.id, title=self.title, link=None, summary=self.summary)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.tp + self.fp + self.fn + self.tn,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "f1": round(self.f1, 3),
        }


def language(why: str) -> str:
    """The language named at the start of ``why`` ("Russian; 2020 war ..."), else English."""
    head = re.split(r"[;,:(]", why, maxsplit=1)[0].strip()
    return head if head in LANGUAGES else "English"


def load_dev(path: Path = DEV) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            rows.append(Row(d["id"], d["title"], d.get("summary", ""), bool(d["label"]), language(d.get("why", ""))))
    return rows


def load_written(paths: Iterable[Path] = WRITTEN) -> list[Row]:
    """Our own labelled sets: per-rule labels; a rule missing from an item's labels has no expectation.
    The note may start with the language ("Russian: ..."), as dev's ``why`` does.
    """
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                labels = {k: bool(v) for k, v in d["labels"].items()}
                rows.append(
                    Row(
                        d["id"],
                        d["title"],
                        d.get("summary", ""),
                        any(labels.values()),
                        language(d.get("note", "")),
                        labels,
                        path.name,
                    )
                )
    return rows


def pack() -> RuleSet:
    report = load_rules(RULES)
    if report.errors:
        raise RuntimeError(f"shipped rules do not load: {report.errors[0]}")
    return report.ruleset


def naive_baseline() -> RuleSet:
    """One rule that fires on any term of the shipped place list, and nothing else."""
    with tempfile.TemporaryDirectory(prefix="feedwatch-naive-") as tmp:
        shutil.copytree(RULES / "lists", Path(tmp) / "lists")
        (Path(tmp) / "naive.toml").write_text(
            f'[rule.naive-places]\nthreshold = 0.1\n[rule.naive-places.groups.places]\nterms = ["@{PLACES_LIST}"]\n',
            encoding="utf-8",
        )
        report = load_rules(Path(tmp))
    if report.errors:
        raise RuntimeError(f"baseline rule does not load: {report.errors[0]}")
    return report.ruleset


def fired(matcher: Matcher, rows: list[Row]) -> dict[str, set[str]]:
    return {r.id: {m.rule_id for m in matcher.score(r.item())} for r in rows}


def item_counts(rows: list[Row], fires: dict[str, set[str]]) -> Counts:
    c = Counts()
    for r in rows:
        c.add(bool(fires[r.id]), r.label)
    return c


def half(rows: list[Row], which: str) -> list[Row]:
    """``odd`` / ``even`` by the number in the id (d001 is odd), ``all`` for every row."""
    if which == "all":
        return rows
    want = 1 if which == "odd" else 0
    return [r for r in rows if int("".join(ch for ch in r.id if ch.isdigit()) or 0) % 2 == want]


def _line(name: str, c: Counts, base: Counts | None = None) -> str:
    text = f"  {name:<22} n={c.tp + c.fp + c.fn + c.tn:<4} P {c.precision:.2f}  R {c.recall:.2f}  F1 {c.f1:.2f}"
    if base is not None:
        text += f"   | baseline P {base.precision:.2f}  R {base.recall:.2f}  F1 {base.f1:.2f}"
    return text


def report(
    rows: list[Row], fires: dict[str, set[str]], base: dict[str, set[str]], rule_ids: Iterable[str]
) -> dict[str, Any]:
    """Print and return overall, per-language, per-half and per-rule figures for the dev set."""
    out: dict[str, Any] = {}
    overall, overall_b = item_counts(rows, fires), item_counts(rows, base)
    print(_line("overall", overall, overall_b))
    out["overall"] = overall.as_dict()
    out["baseline"] = overall_b.as_dict()
    for which in ("odd", "even"):
        part = half(rows, which)
        c, b = item_counts(part, fires), item_counts(part, base)
        print(_line(f"{which} half", c, b))
        out[f"{which}_half"] = c.as_dict()
    by_lang: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_lang[r.language].append(r)
    other = [r for lang, rs in by_lang.items() if len(rs) < 3 for r in rs]
    groups = sorted(((lang, rs) for lang, rs in by_lang.items() if len(rs) >= 3), key=lambda g: -len(g[1]))
    if other:
        groups.append(("other (<3 items each)", other))
    print("  per language:")
    out["languages"] = {}
    for lang, rs in groups:
        c, b = item_counts(rs, fires), item_counts(rs, base)
        print("  " + _line(lang, c, b))
        out["languages"][lang] = c.as_dict()
    print("  per rule (fires, of which labelled 1; positives only this rule catches):")
    out["rules"] = {}
    for rule_id in rule_ids:
        hits = [r for r in rows if rule_id in fires[r.id]]
        good = sum(r.label for r in hits)
        alone = sum(1 for r in hits if r.label and fires[r.id] == {rule_id})
        print(f"    {rule_id:<24} fires {len(hits):>3}  correct {good:>3}  only-this-rule {alone:>3}")
        out["rules"][rule_id] = {"fires": len(hits), "correct": good, "alone": alone}
    return out


def rule_counts(rows: list[Row], fires: dict[str, set[str]]) -> dict[str, Counts]:
    """Per-rule counts over the (item, rule) labels the written sets give."""
    counts: dict[str, Counts] = defaultdict(Counts)
    for r in rows:
        for rule_id, expected in r.rule_labels.items():
            counts[rule_id].add(rule_id in fires[r.id], expected)
    return counts


def _target_row(name: str, value: float, base: float, target: float | None) -> dict[str, Any]:
    """A row whose target is an absolute value, not a ratio to the baseline; no target: information only."""
    r = row(name, round(value, 3), round(base, 3), unit="", ratio=value / base if base else None, op=">=", target=None)
    r["baseline_name"] = "place names only"
    if target is not None:
        r["target"] = f"≥ {target:g} (absolute)"
        r["verdict"] = "ok" if value >= target else "MISS"
    return r


def run(quick: bool) -> dict[str, Any]:
    ruleset = pack()
    matcher, naive = Matcher(ruleset), Matcher(naive_baseline())
    written = load_written()
    w_fires, w_base = fired(matcher, written), fired(naive, written)
    w_item, w_item_b = item_counts(written, w_fires), item_counts(written, w_base)
    micro = Counts()
    for c in rule_counts(written, w_fires).values():
        micro.tp, micro.fp, micro.fn, micro.tn = micro.tp + c.tp, micro.fp + c.fp, micro.fn + c.fn, micro.tn + c.tn
    print(f"  written sets ({len(written)} items, ours):")
    print(_line("any rule", w_item, w_item_b))
    print(_line("per (item, rule) label", micro))
    for path in WRITTEN:
        part = [r for r in written if r.source == path.name]
        print(_line(f"  {path.name}", item_counts(part, w_fires), item_counts(part, w_base)))
    details: dict[str, Any] = {"written": {"items": w_item.as_dict(), "per_rule_micro": micro.as_dict()}}
    rows = [
        _target_row("detection: written P (any rule)", w_item.precision, w_item_b.precision, 0.95),
        _target_row("detection: written R (any rule)", w_item.recall, w_item_b.recall, 0.95),
    ]
    if not DEV.exists():
        reason = f"skipped the real-news part: {DEV} is not present (set FEEDWATCH_REALNEWS_DEV)"
        print(f"  {reason}")
        details["dev"] = {"skipped": reason}
        return {"rows": rows, "details": details}
    dev = load_dev()
    print(f"  real news, {DEV.name} ({len(dev)} items):")
    fires, base = fired(matcher, dev), fired(naive, dev)
    details["dev"] = report(dev, fires, base, ruleset.ids)
    c, b = item_counts(dev, fires), item_counts(dev, base)
    rows += [
        _target_row("detection: dev precision (any rule)", c.precision, b.precision, TARGET_PRECISION),
        _target_row("detection: dev recall (any rule)", c.recall, b.recall, TARGET_RECALL),
    ]
    for which in ("odd", "even"):
        hc, hb = item_counts(half(dev, which), fires), item_counts(half(dev, which), base)
        rows.append(_target_row(f"detection: dev {which}-id half F1", hc.f1, hb.f1, None))
    return {"rows": rows, "details": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__)
    parser.add_argument("--set", choices=("dev", "written"), default="dev")
    parser.add_argument("--half", choices=("all", "odd", "even"), default="all")
    parser.add_argument(
        "--show",
        choices=("fp", "fn", "tp", "all", "rule"),
        action="append",
        default=[],
        help="items to list; 'rule' lists written-set items where any rule disagrees with its label",
    )
    args = parser.parse_args(argv)
    matcher = Matcher(pack())
    rows = half(load_dev() if args.set == "dev" else load_written(), args.half)
    fires = fired(matcher, rows)
    print(_line(f"{args.set} {args.half}", item_counts(rows, fires)))
    for r in rows:
        kind = ("tp" if r.label else "fp") if fires[r.id] else ("fn" if r.label else "tn")
        wrong = sorted(k for k, v in r.rule_labels.items() if v != (k in fires[r.id]))
        if kind in args.show or "all" in args.show or ("rule" in args.show and wrong):
            extra = f" wrong rules {wrong}" if wrong else ""
            print(f"{kind} {r.id} [{r.language}] fired {sorted(fires[r.id])}{extra} | {r.title} | {r.summary[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
