"""Every `feedwatch …` command line in README.md and docs/*.md, found and made runnable in a sandbox.

Where commands are found:
- shell code blocks (```sh, ```console, ```bash, ``` with no language): every line, or part of a
  line between `&&`, `;` and ` | `, whose command is `feedwatch` (also after `sudo -u USER`,
  `VAR=value`, `systemd-run …`, or as `/usr/local/bin/feedwatch`);
- inline code spans starting with `feedwatch` (also after `sudo -u feedwatch`). A synopsis is
  expanded: `[--json]` runs without and with the option, `list|add URL` runs each alternative.
  A span that only names a command (`feedwatch send-test`, or `feedwatch feeds add …` with its
  arguments elided) is checked to exist, not run.

How they run: PLACEHOLDERS (CHANNEL, FILE, ID, URL, …) and server paths (/etc/feedwatch,
/var/lib/feedwatch, web addresses) are mapped into the sandbox; the command then runs through
bash, as written, with `feedwatch` on PATH. Each must exit 0 unless the docs say otherwise.

Marking a command (the only two markers; keep skips rare and give the reason):
- a trailing shell comment in a code block: `feedwatch status   # exit code 4` (or `# exit 4`);
- an HTML comment, `<!-- doc-test: exit 2 -->` or `<!-- doc-test: skip: needs a real systemd -->`,
  on the line before a code block applies to every command in that block; placed on a line of
  prose or a table row, it applies to the inline commands on that line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

SHELL_LANGS = {"", "sh", "shell", "bash", "console", "sh-session", "shell-session"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
MARKER = re.compile(r"<!--\s*doc-test:\s*(exit\s+(?P<exit>\d+)|skip:\s*(?P<skip>[^>]*?))\s*-->")
EXIT_COMMENT = re.compile(r"\bexit(?:\s+code)?\s+(\d+)\b")
INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Options of wrappers that take a value as the next word.
WRAPPER_ARGS = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "systemd-run": {"-p", "--property", "-u", "--unit", "-E", "--setenv", "--uid", "--gid", "-M", "--machine"},
    "env": {"-u", "-C"},
    "nice": {"-n"},
}


@dataclass(frozen=True, slots=True)
class DocCommand:
    """One command as a doc shows it, with where it is and what the doc expects of it."""

    file: str
    line: int
    text: str  # the feedwatch part, placeholders and all
    expect: int = 0
    skip: str | None = None
    inline: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files(repo: Path) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def extract(path: Path, repo: Path) -> list[DocCommand]:
    """The feedwatch commands of one Markdown file, in order."""
    name = str(path.relative_to(repo))
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[DocCommand] = []
    fence: str | None = None
    shell = False
    block_mark: tuple[int | None, str | None] = (None, None)
    pending: tuple[int | None, str | None] = (None, None)
    index = 0
    while index < len(lines):
        raw = lines[index]
        number = index + 1
        index += 1
        opening = FENCE.match(raw)
        if fence is None and opening:
            fence, shell = opening.group(2), opening.group(3).lower() in SHELL_LANGS
            block_mark, pending = pending, (None, None)
            continue
        if fence is not None:
            if raw.strip().startswith(fence):
                fence, block_mark = None, (None, None)
                continue
            if not shell:
                continue
            # Backslash continuations make one logical line.
            logical = raw
            while logical.rstrip().endswith("\\") and index < len(lines):
                logical = logical.rstrip()[:-1] + " " + lines[index].strip()
                index += 1
            for text, comment in block_commands(logical):
                expect, skip = block_mark
                hint = EXIT_COMMENT.search(comment)
                if hint:
                    expect = int(hint.group(1))
                found.append(DocCommand(name, number, text, expect or 0, skip))
            continue
        mark = MARKER.search(raw)
        line_mark: tuple[int | None, str | None] = (None, None)
        if mark:
            line_mark = (int(mark["exit"]) if mark["exit"] else None, mark["skip"])
            rest = MARKER.sub("", raw).strip()
            if not rest:  # a marker on its own line: for the code block that follows
                pending = line_mark
                continue
        elif raw.strip():
            pending = (None, None)
        for span in INLINE.finditer(raw):
            for text in inline_commands(span.group(2)):
                found.append(DocCommand(name, number, text, line_mark[0] or 0, line_mark[1], inline=True))
    return found


def block_commands(line: str) -> Iterator[tuple[str, str]]:
    """(feedwatch command, trailing comment) for each feedwatch command on a shell line."""
    body = line.strip()
    if body.startswith("$ "):
        body = body[2:]
    body, comment = split_comment(body)
    for segment in segments(body):
        command = feedwatch_part(segment)
        if command:
            yield command, comment


def inline_commands(span: str) -> Iterator[str]:
    span = span.replace("\\|", "|")
    if not re.match(r"^(sudo\s+(-u\s+\S+\s+)?)?feedwatch\s+\S", span):  # bare `feedwatch`: the name
        return
    if re.fullmatch(r"feedwatch\s+(…|\.\.\.)", span):  # "`feedwatch …` commands": all of them, none in particular
        return
    body, _comment = split_comment(span)
    for segment in segments(body):
        command = feedwatch_part(segment)
        if command:
            yield command


SEPARATOR = re.compile(r" (?:&&|\|\||\|) |; ")


def segments(line: str) -> list[str]:
    """The commands of a shell line: split at `&&`, `||`, ` | ` and `;` outside quotes.

    A `|` without spaces around it stays: in a synopsis (`feeds list|add URL`) it separates
    alternatives, which :func:`expand` takes apart.
    """
    parts: list[str] = []
    start, i, quote = 0, 0, ""
    while i < len(line):
        ch = line[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif separator := SEPARATOR.match(line, i):
            parts.append(line[start:i])
            start = i = separator.end()
            continue
        i += 1
    parts.append(line[start:])
    return [p.strip() for p in parts if p.strip()]


def split_comment(line: str) -> tuple[str, str]:
    """The line without its trailing `# comment`, and the comment (quotes respected)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :]
    return line.rstrip(), ""


def feedwatch_part(segment: str) -> str | None:
    """The part of a shell segment from the `feedwatch` command word on, or None if it runs something else."""
    words = segment.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "feedwatch" or word.endswith("/bin/feedwatch"):
            return " ".join(["feedwatch", *words[i + 1 :]])
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", word):  # VAR=value
            i += 1
            continue
        if word in WRAPPER_ARGS or word in ("time", "exec", "nohup"):
            takes = WRAPPER_ARGS.get(word, set())
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in takes else 1
            continue
        return None
    return None


def expand(text: str) -> list[str]:
    """A synopsis as concrete commands: `a|b` each alternative; `[X]` options all left out, then all given.

    Two variants exercise every optional part without the 2^n combinations of a long synopsis
    (`alerts list [--rule R] [--since 24h] [--severity S] …`).
    """
    if re.search(r"\[[^\[\]]+\]", text):
        without = re.sub(r"\s*\[[^\[\]]+\]", "", text).strip()
        within = re.sub(r"\[([^\[\]]+)\]", r"\1", text)
        return [*expand(without), *expand(within)]
    words = text.split(" ")
    for i, word in enumerate(words):
        if "|" in word:
            head = " ".join(words[:i])
            alternatives = " ".join(words[i:]).split("|")
            return [f"{head} {alt.strip()}" for alt in alternatives]
    return [text]


def expanded(commands: list[DocCommand]) -> list[DocCommand]:
    return [replace(c, text=variant) for c in commands for variant in expand(c.text)]


def all_commands(repo: Path) -> list[DocCommand]:
    out: list[DocCommand] = []
    for path in doc_files(repo):
        out += expanded(extract(path, repo))
    return out


def words(text: str) -> list[str]:
    """Shell words, for looking at a command (it still runs through bash as written)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
