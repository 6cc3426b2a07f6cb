"""Bad rules live: rule edits (valid, broken, deleted, re-added) while polling never stop the daemon."""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.kit.reliability import Daemon, FeedItem, FeedServer, Setup, WebhookReceiver, place, running, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TERMS = ("shelling", "artillery", "drones")


def rule(term: str) -> str:
    return f'[rule.watch]\ndescription = "watch {term}"\nthreshold = 2.0\n\n[rule.watch.groups.g]\nterms = ["{term}"]\n'


# (what the edit does, file content or None to delete, the term alerting afterwards, rules error expected)
EDITS: list[tuple[str, bytes | None, str | None, bool]] = [
    ("TOML syntax error", b'[rule.watch\nthreshold = \n[rule.watch.groups.g]\nterms = ["artillery"', "shelling", True),
    ("valid: artillery", rule("artillery").encode(), "artillery", False),
    ("threshold is not a number", rule("drones").replace("2.0", '"high"').encode(), "artillery", True),
    ("half-written file", rule("drones").encode()[:40], "artillery", True),
    ("deleted", None, None, False),
    ("re-added, not UTF-8", rule("drones").encode().replace(b"watch drones", b"watch \xff\xfe"), None, True),
    ("re-added valid: drones", rule("drones").encode(), "drones", False),
]


class TestBadRulesLive:
    def test_rule_edits_while_polling(self, tmp_path: Path) -> None:
        """After each edit the daemon keeps running and alerts exactly as the last valid rules say, while
        `status --json` reports the error for as long as the file is broken.
        """
        feeds = FeedServer().start()
        hook = WebhookReceiver().start()
        url = feeds.add_feed("news")
        daemon = Daemon(tmp_path, Setup({"news": url}, webhook_url=hook.url), rules=rule("shelling"))
        path = tmp_path / "rules" / "watch.toml"
        produced = 0

        def check_alerts(expected: str | None, why: str) -> None:
            """Publish one item per term and see which of them alert."""
            nonlocal produced
            before = len(hook.deliveries)
            titles = {}
            for term in TERMS:
                titles[term] = f"{term.capitalize()} near {place(produced)}"
                feeds.add_item("news", FeedItem(f"i{produced}", titles[term], f"https://news.example.org/{produced}"))
                produced += 1
            polled = daemon.count("feed_polled")
            wait_until(lambda: daemon.count("feed_polled") > polled, 10, f"a poll after: {why}")
            if expected is not None:
                wait_until(lambda: len(hook.deliveries) > before, 10, f"an alert after: {why}")
            time.sleep(0.5)  # time for any alert that should not exist
            got = {d.alert["title"] for d in hook.deliveries[before:]}
            want = {titles[expected]} if expected else set()
            assert got == want, why

        def reloaded_since(count: int) -> bool:
            return daemon.count("reloaded") > count

        def rules_errors() -> list[str]:
            out = daemon.cli("status", "--json")
            errors: list[str] = json.loads(out.stdout)["rules"]["errors"]
            return errors

        try:
            with running(daemon):
                wait_until(lambda: daemon.count("feed_polled") > 0, 10, "the first poll")
                check_alerts("shelling", "start")
                for n, (why, content, expected, broken) in enumerate(EDITS):
                    reloads = daemon.count("reloaded")
                    if content is None:
                        path.unlink()
                    elif n % 2:
                        path.write_bytes(content)  # in place, as many editors save
                    else:
                        tmp = path.with_suffix(".swp")
                        tmp.write_bytes(content)
                        os.replace(tmp, path)  # atomic rename, as others do
                    wait_until(functools.partial(reloaded_since, reloads), 10, f"a reload after: {why}")
                    reloaded = daemon.events("reloaded")[-1]
                    assert (reloaded["errors"] > 0) == broken, why
                    check_alerts(expected, why)
                    if n < 2 or content is None or n == len(EDITS) - 1:
                        errors = rules_errors()
                        assert bool(errors) == broken, (why, errors)
                        if broken:
                            assert "watch.toml" in errors[0]
                    assert daemon.alive(), why
                invalid = daemon.events("rule_file_invalid")
                assert len(invalid) == sum(1 for e in EDITS if e[3])
                assert all("watch.toml" in e["error"] for e in invalid)
                # A burst: edits faster than the debounce, SIGHUPs in between, ending on a valid file.
                rng = random.Random(7)
                for n in range(24):
                    content = rng.choice([c for _, c, _, _ in EDITS if c is not None])
                    path.write_bytes(content)
                    if n % 6 == 5:
                        daemon.signal(signal.SIGHUP)
                    time.sleep(rng.uniform(0.02, 0.25))
                path.write_bytes(rule("shelling").encode())
                settled = daemon.count("reloaded")
                wait_until(lambda: daemon.count("reloaded") > settled, 10, "the reload after the burst")
                time.sleep(1.0)  # a late reload of an older version would land now
                check_alerts("shelling", "after the burst")
                assert rules_errors() == []
                assert daemon.stop() == 0
        finally:
            feeds.stop()
            hook.stop()
