"""Docs as tests: every `feedwatch …` command line in README.md and docs/*.md runs in a sandbox as written.

The sandbox is a real site: the shipped rules, the demo feed served by a loopback HTTP server,
channels that deliver to local servers (aiosmtpd, an HTTP receiver), and a daemon running on it,
so `status` sees a healthy daemon and `alerts show ID` a real alert. How commands are found, how
placeholders map, and how the docs mark an expected exit code or a skip: tests/doc_commands.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.cli.main import build_parser
from daemon.errors import StoreError
from daemon.store.sqlite import Store
from tests.conftest import REPO, cli_env
from tests.daemon_harness import NotifyListener
from tests.doc_commands import DocCommand, all_commands, extract, words
from tests.servers import SmtpSink

COMMANDS = all_commands(REPO)
MENTION = re.compile(r"^feedwatch(?: [a-z][a-z-]*)+$")  # only command words: a name, not a command line
TIMEOUT = 60

FEED_ITEM = (
    "<item><title>Shelling reported near Martuni in Nagorno-Karabakh</title>"
    "<link>https://news.example.org/{n}</link><guid isPermaLink='false'>doc-{n}</guid>"
    "<description>Artillery fire overnight.</description></item>"
)


class LocalWeb(BaseHTTPRequestHandler):
    """GET: the demo feed at /feeds/demo.xml, a small feed anywhere else. POST: 200 "ok" (Slack, webhooks)."""

    def do_GET(self) -> None:
        if self.path == "/feeds/demo.xml":
            body = (REPO / "seeds" / "demo.xml").read_bytes()
        else:
            items = FEED_ITEM.format(n=abs(hash(self.path)) % 1000)
            body = (
                f"<?xml version='1.0'?><rss version='2.0'><channel><title>doc</title>"
                f"<link>https://news.example.org/</link><description>d</description>{items}</channel></rss>"
            ).encode()
        self._reply(200, body, "application/rss+xml")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200, b"ok", "text/plain")

    def _reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def site_config(folder: Path, *, web: str, smtp_port: int, store: Path) -> Path:
    """config.toml with the shipped rules, the demo feed over HTTP and every channel the docs name."""
    config = folder / "config.toml"
    config.write_text(
        f"""\
[daemon]
rules_dir = "{folder / "rules"}"
log_level = "info"

[store]
path = "{store}"

[polling]
interval = "1h"
min_interval = "1s"
jitter = 0.0

[alerts]
default_channels = ["console"]

[channels.console]
type = "console"

[channels.email-desk]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "feedwatch@example.org"
to = ["desk@example.org"]
timeout = "5s"

[channels.slack-caucasus]
type = "slack"
webhook_url = "{web}/slack/caucasus"

[channels.slack-desk]
type = "slack"
webhook_url = "{web}/slack/desk"

[channels.webhook-ops]
type = "webhook"
url = "{web}/hooks/ops"

[[feeds]]
name = "demo"
url = "{web}/feeds/demo.xml"
backfill = "all"

[[feeds]]
name = "rferl"  # the feed the docs' examples name
url = "{web}/feeds/rferl.xml"
"""
    )
    return config


class Sandbox:
    """The site the doc commands run against, and the mapping from what docs write to what exists here."""

    def __init__(self, root: Path, web: str, smtp_port: int) -> None:
        self.root = root
        self.web = web
        self.smtp_port = smtp_port
        self.bin = root / "bin"
        self.bin.mkdir()
        script = self.bin / "feedwatch"  # like the console script pip writes
        script.write_text(f"#!{sys.executable}\nimport sys\nfrom daemon.cli.main import main\nsys.exit(main())\n")
        script.chmod(0o755)
        # The checkout's folders the docs name with relative paths (seeds/demo.xml, docs/examples/…),
        # as in a fresh clone, which is where a reader runs them.
        for folder in ("rules", "seeds", "docs"):
            shutil.copytree(REPO / folder, root / folder)
        (root / "var" / "backups" / "feedwatch").mkdir(parents=True)
        self.store = root / "var" / "lib" / "feedwatch" / "feedwatch.db"
        self.config = site_config(root, web=web, smtp_port=smtp_port, store=self.store)
        (root / "subscriptions.opml").write_text(self.opml())
        (root / "labels.jsonl").write_text(json.dumps({"id": "fw-demo-001", "labels": {"karabakh-fighting": True}}))
        self.counter = 0

    def opml(self) -> str:
        return (
            '<?xml version="1.0"?><opml version="2.0"><head><title>export</title></head><body>'
            f'<outline text="Desk"><outline text="Wire" type="rss" xmlUrl="{self.web}/opml/wire.xml"/></outline>'
            "</body></opml>"
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_env(NO_PROXY="*", **extra)
        env["PATH"] = f"{self.bin}{os.pathsep}{env['PATH']}"
        return env

    def fresh(self, name: str) -> Path:
        self.counter += 1
        return self.root / "scratch" / f"{self.counter}" / name

    def alert_id(self) -> str:
        store = Store(self.store, readonly=True)
        try:
            alerts = store.recent_alerts(1)
        finally:
            store.close()
        assert alerts, "the sandbox daemon has made no alert yet"
        return alerts[0].alert_id

    def silence_id(self) -> str:
        """A fresh silence to end (each `silence expire ID` needs its own)."""
        out = subprocess.run(
            ["feedwatch", "silence", "add", "--rule", "karabakh-diplomacy", "--for", "1h", "--comment", "docs test"],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def alert_link(self) -> str:
        store = Store(self.store, readonly=True)
        try:
            alerts = store.recent_alerts(1)
        finally:
            store.close()
        assert alerts, "the sandbox daemon has made no alert yet"
        assert alerts[0].link, "the sandbox's first alert has no link"
        return alerts[0].link

    def placeholder(self, word: str, before: str, command: list[str]) -> str | None:
        """What a placeholder stands for here, given the word before it and the command it is in."""
        if word in ("…", "...") and before in ("--config", "-c"):
            return str(self.config)
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*(\.[a-z]+)?", word):
            return None
        if word == "ID" and command[:2] == ["silence", "expire"]:
            return self.silence_id()
        by_context = {
            ("--rule", "R"): "karabakh-diplomacy",
            ("--rule", "RULE"): "karabakh-diplomacy",
            ("--feed", "F"): "demo",
            ("--feed", "FEED"): "demo",
            ("--match", "TEXT"): "Martuni",
            ("--severity", "S"): "warning",
            ("--status", "STATE"): "delivered",
            ("-n", "N"): "5",
            ("--state", "S"): "pending",
            ("--limit", "N"): "5",
            ("--rules", "DIR"): str(self.root / "rules"),
            ("--labels", "FILE"): str(self.root / "labels.jsonl"),
            ("--title", "T"): "'Shelling reported near Martuni'",
            ("--summary", "S"): "'Nagorno-Karabakh'",
        }
        if (before, word) in by_context:
            return by_context[(before, word)]
        fixed = {
            "CHANNEL": "webhook-ops",
            "URL": f"{self.web}/doc/feed.xml",
            "ID": self.alert_id() if word == "ID" else "",
            "FEED_OR_JSONL": "seeds/demo.xml",
            "NAME": "rferl",  # the sandbox's second feed: enabling or disabling it disturbs nothing
            "FEED": "demo",
            "FILE.opml": "subscriptions.opml",
            "F": str(self.config),
            "THIS_FILE": str(self.config),
        }
        if word in fixed:
            return fixed[word]
        if word == "DIR":
            return str(self.fresh("site"))
        if word == "FILE":
            target = self.fresh("copy.db")
            target.parent.mkdir(parents=True)
            return str(target)
        raise AssertionError(f"placeholder {word!r}: map it in Sandbox.placeholder (tests/test_docs_commands.py)")

    def shell(self, text: str) -> str:
        """The command line as bash runs it here: placeholders, server paths and web addresses mapped."""
        parts = words(text)
        command = [w for w in parts[1:] if not w.startswith("-")][:2]
        tokens = text.split(" ")
        out = []
        for i, word in enumerate(tokens):
            before = tokens[i - 1] if i else ""
            mapped = self.placeholder(word, before, command)
            if mapped is None and command[:1] == ["init"] and before == "init":
                mapped = str(self.fresh("site"))  # init writes a new site: never over the sandbox's own
            if mapped is None and command[:1] == ["explain"] and re.match(r"https?://", word):
                mapped = self.alert_link()  # an item the sandbox has, in place of the docs' example URL
            elif mapped is None:
                mapped = self.local(word)
            out.append(mapped)
        return " ".join(out)

    def local(self, word: str) -> str:
        """Server paths and web addresses of the docs, as they exist in the sandbox."""
        word = word.replace("/etc/feedwatch/config.toml", str(self.config)).replace("/etc/feedwatch", str(self.root))
        word = word.replace("/var/lib/feedwatch", str(self.store.parent))
        word = word.replace("/var/backups/feedwatch", str(self.root / "var" / "backups" / "feedwatch"))
        return re.sub(r"https?://(?!127\.0\.0\.1)([^\s'\"/]+)(/[^\s'\"]*)?", self._local_url, word)

    def _local_url(self, match: re.Match[str]) -> str:
        return f"{self.web}/doc/{match.group(1)}{match.group(2) or ''}"

    def isolated(self) -> Path:
        """A second site on its own store, for `run`: the sandbox's daemon holds the main store."""
        folder = self.fresh("run")
        folder.mkdir(parents=True)
        shutil.copytree(REPO / "rules", folder / "rules")
        shutil.copytree(REPO / "seeds", folder / "seeds")
        site_config(folder, web=self.web, smtp_port=self.smtp_port, store=folder / "var" / "feedwatch.db")
        return folder


def run_daemon(sandbox: Sandbox, line: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`feedwatch run` as the docs show it: started, READY=1, then SIGTERM; its exit code."""
    notify = NotifyListener(folder / "notify.sock")
    try:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=folder,
            env=sandbox.env(NOTIFY_SOCKET=str(notify.path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        notify.wait_for(lambda n: n.has("READY", "1"), timeout=TIMEOUT)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        notify.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The site with its daemon running and its first alerts delivered."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), LocalWeb)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    smtp = SmtpSink()
    smtp.start()
    box = Sandbox(tmp_path_factory.mktemp("docs"), f"http://127.0.0.1:{server.server_port}", smtp.port)
    log = (box.root / "daemon.err").open("w")
    daemon = subprocess.Popen(
        ["feedwatch", "run", "--config", str(box.config)], cwd=box.root, env=box.env(), stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            probe = subprocess.run(
                ["feedwatch", "status", "--json", "--config", str(box.config)],
                env=box.env(),
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0 and box.store.exists() and _has_alert(box):
                break
            assert daemon.poll() is None, (box.root / "daemon.err").read_text()
            assert time.monotonic() < deadline, f"status exit {probe.returncode}: {probe.stdout[:3000]}"
            time.sleep(0.2)
        yield box
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=TIMEOUT)
        log.close()
        smtp.stop()
        server.shutdown()
        server.server_close()


def _has_alert(box: Sandbox) -> bool:
    try:
        box.alert_id()
    except (AssertionError, StoreError):
        return False
    return True


def command_names() -> set[tuple[str, ...]]:
    """Every command path the parser knows: ("feeds",), ("feeds", "add"), …"""
    found: set[tuple[str, ...]] = set()

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found.add((*path, name))
                    walk(child, (*path, name))

    walk(build_parser(), ())
    return found


def check(sandbox: Sandbox, doc: DocCommand) -> None:
    """Run one doc command in the sandbox; AssertionError unless it exits as the docs say."""
    # `feedwatch feeds add …`, `feedwatch explain <item id>`: the command named, its arguments elided.
    named = re.sub(r"(\s+(…|\.\.\.|<[^>]*>))+$", "", doc.text)
    if doc.inline and MENTION.match(named):
        assert tuple(named.split()[1:]) in command_names(), f"{doc.where}: no command `{doc.text}`"
        return
    line = sandbox.shell(doc.text)
    parts = words(line)
    folder = sandbox.root
    if parts[1:2] == ["run"]:
        folder = sandbox.isolated()
        line = line.replace(str(sandbox.config), str(folder / "config.toml"))
    if parts[1:2] == ["run"] and "--once" not in parts and "--dry-run" not in parts:
        out = run_daemon(sandbox, line, folder)
    else:
        out = subprocess.run(
            ["bash", "-c", line], cwd=folder, env=sandbox.env(), capture_output=True, text=True, timeout=TIMEOUT
        )
    assert out.returncode == doc.expect, (
        f"{doc.where}: `{doc.text}` exited {out.returncode}, the docs say {doc.expect}\n"
        f"ran: {line}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    )
    assert "Traceback" not in out.stderr


class TestDocCommands:
    @pytest.mark.slow
    @pytest.mark.parametrize("doc", COMMANDS, ids=[f"{c.where} {c.text}" for c in COMMANDS])
    def test_runs_as_documented(self, sandbox: Sandbox, doc: DocCommand) -> None:
        """The command runs in the sandbox and exits with the code the docs give (0 unless marked)."""
        if doc.skip:
            pytest.skip(f"{doc.where}: {doc.skip}")
        check(sandbox, doc)

    @pytest.mark.slow
    @pytest.mark.parametrize(
        "text",
        ["feedwatch status --no-such-option", "feedwatch feeds frobnicate", "feedwatch send-test no-such-channel"],
    )
    def test_a_wrong_command_fails(self, sandbox: Sandbox, text: str) -> None:
        """A wrong command written into the docs fails the run: the check can fail."""
        with pytest.raises(AssertionError, match="the docs say 0"):
            check(sandbox, DocCommand("docs/x.md", 1, text))
        with pytest.raises(AssertionError, match="no command"):
            check(sandbox, DocCommand("docs/x.md", 1, "feedwatch silences", inline=True))


class TestExtraction:
    def test_covers_every_doc(self) -> None:
        """README and every docs/*.md page with a command line contribute commands to the run."""
        files = {c.file for c in COMMANDS}
        assert "README.md" in files
        assert {"docs/operations.md", "docs/feeds.md"} <= files

    def test_finds_wrappers_pipes_and_markers(self, tmp_path: Path) -> None:
        """sudo, systemd-run, pipes, continuations, comments and the two markers are read as documented."""
        page = tmp_path / "page.md"
        page.write_text(
            "Run `sudo -u feedwatch feedwatch status --json | jq .daemon` often.\n"
            "A name: `feedwatch send-test`. Not ours: `pip install ./feedwatch`.\n\n"
            "```sh\n"
            "pip install -e . && feedwatch run --once\n"
            "sudo systemd-run --pipe -p User=feedwatch \\\n"
            "  /usr/local/bin/feedwatch send-test email-desk --config /etc/feedwatch/config.toml\n"
            "feedwatch status   # exit code 4\n"
            "backup: /var/backups/feedwatch.db (1.2 MiB)\n"
            "```\n\n"
            "<!-- doc-test: exit 2 -->\n"
            "```sh\n"
            "feedwatch check\n"
            "```\n"
            "| `feedwatch feeds list\\|add URL` | x | <!-- doc-test: skip: needs a real systemd -->\n"
        )
        found = [(c.line, c.text, c.expect, c.skip) for c in extract(page, tmp_path)]
        assert found == [
            (1, "feedwatch status --json", 0, None),
            (2, "feedwatch send-test", 0, None),
            (5, "feedwatch run --once", 0, None),
            (6, "feedwatch send-test email-desk --config /etc/feedwatch/config.toml", 0, None),
            (8, "feedwatch status", 4, None),
            (14, "feedwatch check", 2, None),
            (16, "feedwatch feeds list|add URL", 0, "needs a real systemd"),
        ]
