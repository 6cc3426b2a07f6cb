"""Config loading: typed values, precise key-path errors, path resolution, secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.config.load import find_config, load_config
from daemon.errors import ConfigError

MINIMAL = """
[[feeds]]
url = "seeds/demo.xml"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestLoad:
    def test_minimal_config_gets_defaults(self, tmp_path: Path) -> None:
        """A config with one feed path gets the documented defaults and a console channel."""
        cfg = load_config(write(tmp_path, MINIMAL))
        assert cfg.polling.interval == 900.0
        assert cfg.store.path == tmp_path / "var" / "feedwatch.db"
        assert cfg.rules_dir == tmp_path / "rules"
        assert list(cfg.channels) == ["console"]
        assert cfg.feeds[0].url == (tmp_path / "seeds" / "demo.xml").as_uri()
        assert cfg.feeds[0].name == "demo"

    def test_shipped_config_loads(self) -> None:
        """The repository's config.toml is valid and points at the demo feed with backfill."""
        cfg = load_config(Path(__file__).resolve().parents[2] / "config.toml")
        assert cfg.feeds[0].backfill == float("inf")
        assert cfg.feeds[0].url.endswith("seeds/demo.xml")

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                '[[feeds]]\nurl = "a.xml"\n[[feeds]]\nurl = "b.xml"\n[[feeds]]\nurl = "c.xml"\ninterval = "fast"\n',
                'feeds[2].interval: expected a duration like "90s", "5m", "1h" or "2d", got \'fast\'',
            ),
            ('[polling]\nintervall = "5m"\n', "polling.intervall: unknown key (did you mean 'interval'?)"),
            ("[polling]\nmax_concurrency = true\n", "polling.max_concurrency: expected an integer, got bool True"),
            ('[polling]\nmax_concurrency = "8"\n', "polling.max_concurrency: expected an integer, got '8'"),
            ("[[feeds]]\nname = 'x'\n", "feeds[0].url: required value is missing"),
            ('[[feeds]]\nurl = "ftp://example.org/x"\n', "feeds[0].url: unsupported scheme 'ftp'"),
            ('[channels.desk]\ntype = "pager"\n', "channels.desk.type: unknown channel type 'pager'"),
            ('[alerts]\ndefault_channels = ["email"]\n', "alerts.default_channels[0]: unknown channel 'email'"),
            ('[[feeds]]\nurl = "a.xml"\n[[feeds]]\nurl = "a.xml"\n', "feeds[1]: feed URL"),
            ('[polling]\ninterval = "10s"\n', "polling.interval: is below min_interval"),
        ],
    )
    def test_errors_name_file_and_key_path(self, tmp_path: Path, text: str, message: str) -> None:
        """Each mistake raises ConfigError naming the file, line and column, the key path and what was expected."""
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(info.value))
        assert message in str(info.value)

    def test_every_mistake_is_reported_at_once_with_its_position(self, tmp_path: Path) -> None:
        """Mistakes in several sections and files come in one error, one line each, as file:line:column."""
        path = write(
            tmp_path,
            '[polling]\nintervall = "5m"\nmax_concurrency = 0\n\n'
            '[channels.desk]\ntype = "email"\nhost = "h"\nsender = "a@x"\nto = "b@x"\nprot = 25\n\n'
            '[[feeds]]\nurl = "a.xml"\ninterval = "fast"\n',
        )
        (tmp_path / "feeds.d").mkdir()
        (tmp_path / "feeds.d" / "more.toml").write_text('[[feeds]]\nurl = "b.xml"\nenabled = "yes"\n')
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value).splitlines() == [
            f"{path}:2:1: polling.intervall: unknown key (did you mean 'interval'?)",
            f"{path}:3:1: polling.max_concurrency: expected an integer >= 1, got 0",
            f"{path}:10:1: channels.desk.prot: unknown key (did you mean 'port'?)",
            f'{path}:14:1: feeds[0].interval: expected a duration like "90s", "5m", "1h" or "2d", got \'fast\'',
            f"{tmp_path / 'feeds.d' / 'more.toml'}:3:1: feeds[0].enabled: expected true or false, got 'yes'",
        ]
        assert len(info.value.problems) == 5

    def test_toml_syntax_error_has_line_and_column(self, tmp_path: Path) -> None:
        """A TOML syntax error reports line and column."""
        path = write(tmp_path, '[polling]\ninterval = "5m\n')
        with pytest.raises(ConfigError, match=r"config\.toml:2:\d+: TOML syntax error"):
            load_config(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing config file is a ConfigError naming the path."""
        with pytest.raises(ConfigError, match="file not found"):
            load_config(tmp_path / "nope.toml")

    def test_feeds_d_merged_and_duplicates_rejected(self, tmp_path: Path) -> None:
        """feeds.d/*.toml adds feeds; a URL defined twice across files is an error naming both."""
        path = write(tmp_path, MINIMAL)
        (tmp_path / "feeds.d").mkdir()
        (tmp_path / "feeds.d" / "extra.toml").write_text('[[feeds]]\nurl = "https://example.org/rss"\n')
        cfg = load_config(path)
        assert [f.url for f in cfg.feeds][1] == "https://example.org/rss"
        (tmp_path / "feeds.d" / "dup.toml").write_text('[[feeds]]\nurl = "https://example.org/rss"\nname = "again"\n')
        with pytest.raises(ConfigError, match=r"extra.toml:1:1: feeds\[0\]: feed URL .* already defined at dup.toml"):
            load_config(path)

    def test_backfill_forms(self, tmp_path: Path) -> None:
        """backfill accepts "all", a duration, or false."""
        cfg = load_config(
            write(
                tmp_path,
                '[[feeds]]\nurl = "a.xml"\nbackfill = "24h"\n[[feeds]]\nurl = "b.xml"\nbackfill = false\n',
            )
        )
        assert [f.backfill for f in cfg.feeds] == [86400.0, None]


class TestSecrets:
    def test_secret_from_env_is_redacted(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A feed password from the environment is available but never printed by repr."""
        monkeypatch.setenv("FW_TEST_PW", "hunter2")
        cfg = load_config(write(tmp_path, MINIMAL + 'username = "u"\npassword_env = "FW_TEST_PW"\n'))
        secret = cfg.feeds[0].password
        assert secret is not None
        assert secret.reveal() == "hunter2"
        assert "hunter2" not in repr(cfg.feeds[0])

    def test_secret_from_credentials_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """*_credential reads $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=), newline stripped."""
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "feedtoken").write_text("tok-123\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        cfg = load_config(write(tmp_path, MINIMAL + 'token_credential = "feedtoken"\n'))
        assert cfg.feeds[0].token is not None
        assert cfg.feeds[0].token.reveal() == "tok-123"

    def test_unset_env_is_an_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Naming an unset environment variable is a ConfigError that names the variable, not a value."""
        monkeypatch.delenv("FW_NOPE", raising=False)
        with pytest.raises(ConfigError, match="FW_NOPE is not set"):
            load_config(write(tmp_path, MINIMAL + 'token_env = "FW_NOPE"\n'))


class TestFindConfig:
    def test_precedence(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--config wins over $FEEDWATCH_CONFIG, which wins over ./config.toml."""
        monkeypatch.setenv("FEEDWATCH_CONFIG", "/etc/fw.toml")
        assert find_config("x.toml") == Path("x.toml")
        assert find_config(None) == Path("/etc/fw.toml")
        monkeypatch.delenv("FEEDWATCH_CONFIG")
        assert find_config(None) == Path("config.toml")


class TestChannelExamples:
    def test_every_channel_example_in_the_docs_loads(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each [channels.*] TOML example in docs/channels.md is a valid configuration."""
        doc = (Path(__file__).resolve().parents[2] / "docs" / "channels.md").read_text()
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
        for name in ("smtp-password", "slack-webhook", "webhook-hmac", "webhook-url", "apprise-urls", "slack-bot"):
            (tmp_path / name).write_text("https://hooks.example.org/T000/B000/xyz\n")
        examples = [b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "[channels." in b]
        assert examples
        for block in examples:
            cfg = load_config(write(tmp_path, block))
            assert len(cfg.channels) == 2  # the example's channel and the built-in console

    def test_email_sender_spelled_once(self, tmp_path: Path) -> None:
        """`sender` and its alias `from` together are an error naming the key."""
        text = '[channels.m]\ntype = "email"\nhost = "h"\nsender = "a@x"\nfrom = "b@x"\nto = "c@x"\n'
        with pytest.raises(ConfigError, match=r"channels\.m\.from: give either 'sender' or 'from'"):
            load_config(write(tmp_path, text))


def test_operator_commands_read_every_channel_key(tmp_path: Path) -> None:
    """Without secrets (check, status), a Slack channel's other keys still count as known keys."""
    text = '[channels.s]\ntype = "slack"\nwebhook_url_env = "FW_UNSET_HOOK"\ntimeout = "5s"\nusername = "fw"\n'
    cfg = load_config(write(tmp_path, text), secrets=False)
    assert "s" in cfg.channels
