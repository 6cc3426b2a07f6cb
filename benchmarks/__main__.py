"""``python -m benchmarks [--quick] [--only NAME ...]``: run the suite, print the table, write JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS
from benchmarks.harness import REPO, fmt, machine

RESULTS = REPO / "benchmarks" / "results" / "latest.json"
COLUMNS = ("benchmark", "feedwatch", "baseline", "ratio", "target", "verdict")


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
    baseline = fmt(r["baseline"], r["unit"])
    if r.get("baseline_name") and r["baseline"] is not None:
        baseline += f" ({r['baseline_name']})"
    return (r["name"], fmt(r["feedwatch"], r["unit"]), baseline, ratio, r["target"], r["verdict"])


def table(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    lines = [_cells(r) for r in rows]
    if markdown:
        out = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(COLUMNS)]
    sep = "  "
    out = [sep.join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True))]
    out.append(sep.join("-" * w for w in widths))
    out += [sep.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute or two)")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME", help=f"one of {BENCHMARKS}")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write results (default {RESULTS})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    args = parser.parse_args(argv)

    info = machine()
    print(
        f"feedwatch benchmarks ({'quick' if args.quick else 'full'}) at {info['commit'] or 'working tree'} — "
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, Python {info['python']}, "
        f"SQLite {info['sqlite']}; load average {info['load_avg_at_start'][0]}",
        flush=True,
    )
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        print(f"… {name}", flush=True)
        t = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            result = module.run(args.quick)
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}", "rows": []}
        result["seconds"] = round(time.perf_counter() - t, 1)
        result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        results[name] = result
        rows += result["rows"]
        for r in result["rows"]:
            print("   " + " | ".join(_cells(r)), flush=True)
        if "error" in result:
            print(f"   FAILED: {result['error']}", flush=True)
    total = time.perf_counter() - started

    print()
    print(table(rows))
    if args.markdown:
        print()
        print(table(rows, markdown=True))
    for name, result in results.items():
        print(f"\n{name} ({result['seconds']} s): " + json.dumps(result.get("details", {}), ensure_ascii=False))
    print(f"\ntotal {total:.0f} s; load average now {os.getloadavg()[0]:.2f}")

    doc = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "seconds": round(total, 1),
        "rows": rows,
        "benchmarks": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {args.json}")
    failed = any("error" in r for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
