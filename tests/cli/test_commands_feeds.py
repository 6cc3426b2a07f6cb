"""`feedwatch feeds …` edits config.toml keeping comments, validates, and imports OPML."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config.load import load_config
from daemon.util.urls import missing_scheme
from tests.conftest import CLI, cli_env
from tests.kit.users import as_nobody

CONFIG = """# my watch desk
[polling]
interval = "10m"   # keep it polite

[[feeds]]
name = "local"
url = "local.xml"
"""

NOBODY = 65534

OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>export</title></head><body>
  <outline text="Caucasus desk">
    <outline text="Wire" title="Wire" type="rss" xmlUrl="https://wire.example.org/rss"/>
    <outline text="Local" type="rss" xmlUrl="local.xml"/>
  </outline>
  <outline text="Loose" type="rss" xmlUrl="https://loose.example.org/atom"/>
</body></opml>
"""


def feedwatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


class TestFeedsCommands:
    def test_add_keeps_comments_and_validates(self, tmp_path: Path) -> None:
        """add appends a [[feeds]] table, keeps the operator's comments, and the result loads."""
        (tmp_path / "config.toml").write_text(CONFIG)
        out = feedwatch(tmp_path, "feeds", "add", "https://news.example.org/rss", "--tag", "wire", "--interval", "5m")
        assert out.returncode == 0, out.stderr
        text = (tmp_path / "config.toml").read_text()
        assert "# my watch desk" in text
        assert "# keep it polite" in text
        cfg = load_config(tmp_path / "config.toml")
        assert cfg.feeds[-1].url == "https://news.example.org/rss"
        assert cfg.feeds[-1].tags == ("wire",)

    def test_add_duplicate_is_refused(self, tmp_path: Path) -> None:
        """Adding a URL that is already configured changes nothing and exits 2."""
        (tmp_path / "config.toml").write_text(CONFIG)
        before = (tmp_path / "config.toml").read_text()
        out = feedwatch(tmp_path, "feeds", "add", "local.xml")
        assert out.returncode == 2
        assert (tmp_path / "config.toml").read_text() == before

    def test_add_refusals_name_the_clash_on_stderr(self, tmp_path: Path) -> None:
        """A known URL and a taken name are refused on stderr, each saying which one clashes."""
        (tmp_path / "config.toml").write_text(CONFIG)
        url = feedwatch(tmp_path, "feeds", "add", "local.xml")
        assert (url.returncode, url.stdout) == (2, "")
        assert "local.xml: already configured (feed 'local')" in url.stderr
        name = feedwatch(tmp_path, "feeds", "add", "https://other.example.org/rss", "--name", "local")
        assert (name.returncode, name.stdout) == (2, "")
        assert "a feed is already named 'local'" in name.stderr
        gone = feedwatch(tmp_path, "feeds", "remove", "nope")
        assert (gone.returncode, gone.stdout) == (2, "")
        assert "no feed 'nope'" in gone.stderr

    def test_import_names_what_it_skips(self, tmp_path: Path) -> None:
        """import says which feeds it skipped because they are configured already."""
        (tmp_path / "config.toml").write_text(CONFIG)
        (tmp_path / "export.opml").write_text(OPML)
        assert feedwatch(tmp_path, "feeds", "import", "export.opml").returncode == 0
        again = feedwatch(tmp_path, "feeds", "import", "export.opml")
        assert "imported 0 of 3" in again.stdout
        assert "not imported: https://wire.example.org/rss: already configured (feed '" in again.stderr

    def test_add_invalid_value_leaves_file_untouched(self, tmp_path: Path) -> None:
        """An invalid interval is rejected with the config error and the file is not modified."""
        (tmp_path / "config.toml").write_text(CONFIG)
        before = (tmp_path / "config.toml").read_text()
        out = feedwatch(tmp_path, "feeds", "add", "https://x.example.org/rss", "--interval", "fast")
        assert out.returncode == 2
        assert "interval" in out.stderr
        assert (tmp_path / "config.toml").read_text() == before
        assert not list(tmp_path.glob(".feedwatch-*"))

    def test_remove_by_name(self, tmp_path: Path) -> None:
        """remove deletes the feed's table from the file that defines it."""
        (tmp_path / "config.toml").write_text(CONFIG)
        out = feedwatch(tmp_path, "feeds", "remove", "local")
        assert out.returncode == 0, out.stderr
        assert load_config(tmp_path / "config.toml").feeds == ()
        assert "# my watch desk" in (tmp_path / "config.toml").read_text()

    def test_import_opml_with_folders_as_tags(self, tmp_path: Path) -> None:
        """import adds every new feed of an OPML export; folders become tags; known URLs are skipped."""
        (tmp_path / "config.toml").write_text(CONFIG)
        (tmp_path / "export.opml").write_text(OPML)
        out = feedwatch(tmp_path, "feeds", "import", "export.opml")
        assert out.returncode == 0, out.stderr
        assert "imported 2 of 3" in out.stdout
        feeds = {f.url: f for f in load_config(tmp_path / "config.toml").feeds}
        assert feeds["https://wire.example.org/rss"].tags == ("caucasus-desk",)
        assert feeds["https://loose.example.org/atom"].tags == ()

    def test_list(self, tmp_path: Path) -> None:
        """list shows each configured feed, its interval and that it was never polled."""
        (tmp_path / "config.toml").write_text(CONFIG)
        out = feedwatch(tmp_path, "feeds", "list")
        assert out.returncode == 0, out.stderr
        assert "local" in out.stdout
        assert "every 600s" in out.stdout
        assert "never polled" in out.stdout


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="feedwatch-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestFilesKeepTheirOwner:
    @pytest.mark.parametrize(
        "argv",
        [["feeds", "add", "https://news.example.org/rss"], ["feeds", "remove", "local"], ["feeds", "import", "x.opml"]],
        ids=" ".join,
    )
    def test_mode_640_stays_640(self, tmp_path: Path, argv: list[str]) -> None:
        """`chmod 640 config.toml; feedwatch feeds add|remove|import …` leaves the file 0640."""
        config = tmp_path / "config.toml"
        config.write_text(CONFIG)
        (tmp_path / "x.opml").write_text(OPML)
        config.chmod(0o640)
        out = feedwatch(tmp_path, *argv)
        assert out.returncode == 0, out.stderr
        assert mode(config) == 0o640
        assert config.read_text() != CONFIG  # it was really rewritten
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    def test_feeds_d_file_keeps_mode_and_owner(self, tmp_path: Path) -> None:
        """remove edits the feeds.d file that defines the feed and keeps its mode (and owner, as root)."""
        (tmp_path / "config.toml").write_text('[polling]\ninterval = "10m"\n')
        extra = tmp_path / "feeds.d" / "wire.toml"
        extra.parent.mkdir()
        extra.write_text(
            '[[feeds]]\nname = "wire"\nurl = "https://wire.example.org/rss"\n\n[[feeds]]\nname = "b"\n'
            'url = "https://b.example.org/rss"\n'
        )
        extra.chmod(0o604)
        if os.geteuid() == 0:
            os.chown(extra, NOBODY, NOBODY)
        out = feedwatch(tmp_path, "feeds", "remove", "wire")
        assert out.returncode == 0, out.stderr
        assert "wire.example.org" not in extra.read_text()
        assert mode(extra) == 0o604
        if os.geteuid() == 0:
            assert (extra.stat().st_uid, extra.stat().st_gid) == (NOBODY, NOBODY)

    @pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
    def test_root_edit_keeps_service_owner(self, tmp_path: Path) -> None:
        """`sudo feedwatch feeds add` on a config owned by the service's user and group keeps that owner."""
        config = tmp_path / "config.toml"
        config.write_text(CONFIG)
        os.chown(config, NOBODY, NOBODY)
        config.chmod(0o640)
        assert feedwatch(tmp_path, "feeds", "add", "https://news.example.org/rss").returncode == 0
        assert (config.stat().st_uid, config.stat().st_gid, mode(config)) == (NOBODY, NOBODY, 0o640)

    def test_user_who_may_write_only_the_file(self, open_dir: Path) -> None:
        """A user who may write the config but not its folder still adds a feed; the file keeps its owner."""
        config = open_dir / "config.toml"
        config.write_text(CONFIG)
        config.chmod(0o666)
        owner = config.stat().st_uid
        out = subprocess.run(
            [*as_nobody(), *CLI, "feeds", "add", "https://news.example.org/rss"],
            cwd=open_dir,
            env=cli_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert "news.example.org" in config.read_text()
        assert (config.stat().st_uid, mode(config)) == (owner, 0o666)


class TestPreciseErrors:
    def test_url_without_scheme_is_refused(self, tmp_path: Path) -> None:
        """A web address typed without https:// is refused with the likely fix; the file is untouched."""
        (tmp_path / "config.toml").write_text(CONFIG)
        out = feedwatch(tmp_path, "feeds", "add", "news.example.org/rss")
        assert out.returncode == 2
        assert "did you mean 'https://news.example.org/rss'?" in out.stderr
        assert (tmp_path / "config.toml").read_text() == CONFIG

    def test_url_without_scheme_in_config_is_refused(self, tmp_path: Path) -> None:
        """The same address written into config.toml is a config error naming the key, not a missing file."""
        (tmp_path / "config.toml").write_text('[[feeds]]\nname = "x"\nurl = "news.example.org:8080/rss"\n')
        out = feedwatch(tmp_path, "check")
        assert out.returncode == 2
        assert re.search(r"config\.toml:3:\d+: feeds\[0\]\.url:", out.stderr), out.stderr
        assert "did you mean 'https://news.example.org:8080/rss'?" in out.stderr

    def test_errors_name_the_operators_file_not_a_temp_file(self, tmp_path: Path) -> None:
        """A rejected edit is reported against config.toml, never an internal temporary file."""
        (tmp_path / "config.toml").write_text(CONFIG)
        out = feedwatch(tmp_path, "feeds", "add", "https://x.example.org/rss", "--interval", "fast")
        assert out.returncode == 2
        assert re.search(r"error: config\.toml(:\d+:\d+)?: feeds\[1\]\.interval: expected a duration", out.stderr), (
            out.stderr
        )
        assert ".tmp" not in out.stderr
        assert "feedwatch-" not in out.stderr.replace("feedwatch: error", "")


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("news.example.org/rss", "https://news.example.org/rss"),
        ("www.example.org", "https://www.example.org"),
        ("example.org:8080/feed?x=1", "https://example.org:8080/feed?x=1"),
        ("seeds/demo.xml", None),
        ("local.xml", None),
        ("feeds/world.rss", None),
        ("./news.example.org/rss", None),
        ("https://news.example.org/rss", None),
        ("file:///srv/feed.xml", None),
    ],
)
def test_missing_scheme(raw: str, suggestion: str | None) -> None:
    """Web addresses typed without a scheme are recognised; file paths are not mistaken for them."""
    assert missing_scheme(raw) == suggestion
