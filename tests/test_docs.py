"""The documentation says what the code has: every ``iotsphere`` command it shows exists with the options it
uses (a group named alone is fine: its ``--help`` lists its commands), every link between the docs resolves (to a
file, and to a heading when it names one), every repository path they name exists, and nothing points at the team
folder outside the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from iotsphere.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: an ``iotsphere`` invocation up to the end of its line, a ``)`` closing ``$(...)`` or a backtick
_INVOCATION = re.compile(r"(?<![\w./-])iotsphere((?:\s+[^\s)`]+)+)")
_CODE_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def _shown_invocations(text: str) -> list[str]:
    """Each ``iotsphere ...`` the text shows: in code blocks (continuation lines joined), and in inline code."""
    found = []
    for block in _CODE_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            found += [m.group(1) for m in _INVOCATION.finditer(line.split(" #")[0])]
    prose = _CODE_BLOCK.sub("", text)
    for span in _INLINE_CODE.findall(prose):
        found += [m.group(1) for m in _INVOCATION.finditer(span)]
    return found


def _invocations() -> list[tuple[str, str]]:
    return [(doc.name, words.strip()) for doc in DOCS for words in _shown_invocations(doc.read_text())]


def _sub_command(group: click.Command, name: str) -> click.Command | None:
    if not isinstance(group, click.Group):
        return None
    return group.get_command(click.Context(group), name)


def _options(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(param.opts, param.secondary_opts)
    return names


@pytest.mark.parametrize(("doc", "words"), _invocations())
def test_every_command_the_docs_show_exists_with_its_options(doc: str, words: str) -> None:
    tokens = [t.strip("[]") for t in shlex.split(words.replace("|", " | "))]
    command: click.Command = main
    path = ["iotsphere"]
    while tokens and tokens[0] and not tokens[0].startswith("-"):
        alternatives = [tokens.pop(0)]
        while len(tokens) >= 2 and tokens[0] == "|":  # `sim history|run`: each must exist
            alternatives.append(tokens[1])
            del tokens[:2]
        if not isinstance(command, click.Group):
            tokens.insert(0, alternatives[0])  # an argument of the command reached: put it back
            break
        found = [_sub_command(command, name) for name in alternatives]
        assert all(found), f"{doc}: `iotsphere {words}`: no command {' '.join(path)} {alternatives}"
        command, path = found[0], [*path, alternatives[0]]
    used = {t.split("=", 1)[0] for t in tokens if t.startswith("--")}
    unknown = used - _options(command)
    assert not unknown, f"{doc}: `iotsphere {words}`: {' '.join(path)} has no option {sorted(unknown)}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower())
    return text.replace(" ", "-")


def _links() -> list[tuple[str, str]]:
    return [
        (doc.relative_to(ROOT).as_posix(), target)
        for doc in DOCS
        for target in _LINK.findall(doc.read_text())
        if not re.match(r"[a-z]+:", target)
    ]


@pytest.mark.parametrize(("doc", "target"), _links())
def test_every_link_between_the_docs_resolves(doc: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (ROOT / doc).parent / path if path else ROOT / doc
    assert file.exists(), f"{doc} links to {target}: no such file"
    if anchor and file.suffix == ".md":
        anchors = {_slug(h) for h in _HEADING.findall(_CODE_BLOCK.sub("", file.read_text()))}
        assert anchor in anchors, f"{doc} links to {target}: no such heading in {path or doc}"


def test_the_docs_link_every_doc() -> None:
    linked = {Path(target.partition("#")[0]).name for doc, target in _links() if doc == "README.md"}
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in linked, f"README.md links to no docs/{page.name}"


#: a path in the repository, as the docs name files and folders in inline code
_REPO_PATH = re.compile(r"^(?:shared|firmware_sim|edge_agent|cloud|iotsphere|tests|bench|deploy|docs)/[\w./-]*$")
#: what an operator creates before ``docker compose up`` (docs/deployment.md), and the topic prefix ``iotsphere/v1``
_NOT_IN_THE_REPO = {
    "deploy/mosquitto/certs",
    "deploy/mosquitto/passwords",
    "deploy/provision",
    "deploy/secrets",
    "iotsphere/v1",
}


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_repository_path_the_docs_name_exists(doc: Path) -> None:
    spans = _INLINE_CODE.findall(_CODE_BLOCK.sub("", doc.read_text()))
    named = {word.rstrip("/") for span in spans for word in span.split() if _REPO_PATH.match(word)}
    generated = {p for p in named if any(p == made or p.startswith(f"{made}/") for made in _NOT_IN_THE_REPO)}
    missing = sorted(p for p in named - generated if not (ROOT / p).exists())
    assert not missing, f"{doc.name} names {missing}, which the repository does not hold"


def test_nothing_points_outside_the_repository() -> None:
    """The design and the reference facts live in the repo (docs/), not in the team folder beside it."""
    this = Path(__file__).resolve()
    for pattern in ("*.py", "*.md", "*.conf", "*.yml", "*.toml", "Makefile"):
        for file in ROOT.rglob(pattern):
            if {".venv", "build"} & set(file.parts) or file == this:
                continue
            text = file.read_text(errors="replace")
            for outside in ("ARCHITECTURE", "../shared/", "shared/reference"):
                assert outside not in text, f"{file.relative_to(ROOT)} names {outside}"


def test_every_variable_the_docs_name_is_a_setting() -> None:
    """docs/configuration.md is the settings' own table (tests/test_config.py), so a name missing there is stale."""
    settings = set(re.findall(r"IOTSPHERE_[A-Z_]+", (ROOT / "docs" / "configuration.md").read_text()))
    for doc in DOCS:
        unknown = set(re.findall(r"IOTSPHERE_[A-Z_]+", doc.read_text())) - settings
        assert not unknown, f"{doc.name} names {sorted(unknown)}, which are no settings"
