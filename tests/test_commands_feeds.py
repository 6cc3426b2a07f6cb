"""`feedwatch feeds …` edits config.toml keeping comments, validates, and imports OPML."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.config.load import load_config
from tests.conftest import CLI, cli_env

CONFIG = """# my watch desk
[polling]
interval = "10m"   # keep it polite

[[feeds]]
name = "local"
url = "local.xml"
"""

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
