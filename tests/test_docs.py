"""Every code block in README.md, CHANGELOG.md and docs/*.md runs as shown (docs/README.md's rules)."""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import pytest

sybil = pytest.importorskip("sybil")
from sybil import Document, Example, Region  # noqa: E402
from sybil.evaluators.doctest import DocTestEvaluator  # noqa: E402
from sybil.parsers.abstract.doctest import DocTestStringParser  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, SkipParser  # noqa: E402
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer  # noqa: E402

pytestmark = pytest.mark.extra  # Sybil is a test-only dependency (requirements-dev.txt)

ROOT = Path(__file__).resolve().parent.parent
SEEDLOOP_PATH = str(Path(__import__("seedloop").__file__).resolve().parent.parent)
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

# Fenced blocks by language: `python` and `console` run (unless a skip comment says why
# not), `output` is what the python block before it prints; the rest are never run.
RUN = {"python", "console", "output"}
SHOWN = {"text", "sh", "yaml", "toml", "ini"}
FLAGS = doctest.ELLIPSIS
LAST_OUTPUT = "__docs_last_output__"
FILE_NEXT = "__docs_file_next__"


def _normalise(text: str) -> str:
    # Column widths follow the widest cell (a timing, say): runs of spaces and of
    # table rules compare equal whatever their length.
    text = re.sub(r"─+", "─", re.sub(r"━+", "━", text))
    lines = (re.sub(r"[ \t]+", " ", line).rstrip() for line in text.strip("\n").splitlines())
    return "\n".join(lines) + "\n"


def _check(expected: str, got: str) -> bool:
    """Does ``got`` match ``expected``, where ``...`` in ``expected`` matches anything?"""
    return doctest.OutputChecker().check_output(_normalise(expected), _normalise(got), FLAGS)


def _mismatch(what: str, expected: str, got: str) -> str:
    return f"{what} printed something else.\n--- the doc shows:\n{expected}\n--- it printed:\n{got}"


def file_next(example: Example) -> str | None:
    """`<!-- file: PATH -->`: the next block shows that file of the repository, exactly."""
    example.namespace[FILE_NEXT] = example.parsed
    return None


def _shows_file(example: Example) -> str | None:
    path = example.namespace.pop(FILE_NEXT, None)
    if path is None:
        return None
    text = (ROOT / path).read_text()
    if text.strip() != str(example.parsed).strip():
        return _mismatch(f"the block showing {path}", text, str(example.parsed))
    return ""


def run_python(example: Example) -> str | None:
    """Run a python block in the document's namespace, keeping what it prints."""
    shown = _shows_file(example)
    if shown is not None:
        return shown or None
    source = "\n" * (example.line + example.parsed.line_offset) + example.parsed
    code = compile(source, example.path, "exec", dont_inherit=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, example.namespace)
    example.namespace.pop("__builtins__", None)
    example.namespace[LAST_OUTPUT] = out.getvalue()
    return None


def check_output(example: Example) -> str | None:
    """An `output` block: what the python block just before it printed."""
    got = example.namespace.pop(LAST_OUTPUT, None)
    if got is None:
        return "an `output` block must follow a python block that ran"
    if not _check(example.parsed, got):
        return _mismatch("the python block above", example.parsed, got)
    return None


def _commands(block: str) -> list[tuple[str, str]]:
    """`$ command` lines (a trailing backslash continues one) and the output after each."""
    pairs: list[tuple[str, str]] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            raise ValueError(f"a console block starts each command with '$ ': {line!r}")
        command = line[2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        pairs.append((command, "\n".join(output)))
    return pairs


def run_console(example: Example) -> str | None:
    """Run each `$ command` with bash from the repository root; compare what it prints."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # The seedloop this test imported (a source tree or an installed wheel), first.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SEEDLOOP_PATH, env.get("PYTHONPATH", "")) if p)
    env.update(COLUMNS="80", NO_COLOR="1", TERM="dumb", PYTHONHASHSEED="0")
    for command, expected in _commands(example.parsed):
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if expected.strip():
            if not _check(expected, done.stdout):
                return _mismatch(f"$ {command} (exit {done.returncode})", expected, done.stdout)
        elif done.returncode != 0:
            return f"$ {command} exited {done.returncode}:\n{done.stdout}"
    return None


class PythonParser:
    """python blocks: `>>>` sessions are doctests, anything else runs as a script."""

    def __init__(self) -> None:
        self.doctests = DocTestStringParser(DocTestEvaluator(FLAGS))
        self.blocks = CodeBlockParser("python", run_python)

    def __call__(self, document: Document):
        for region in self.blocks(document):
            source = region.parsed
            if source.startswith(">>>"):
                for doctest_region in self.doctests(source, document.path):
                    doctest_region.adjust(region, source)
                    yield doctest_region
            else:
                yield region


class FileParser:
    """`<!-- file: PATH -->` comments."""

    def __init__(self) -> None:
        self.lexer = DirectiveInHTMLCommentLexer("file", arguments=r"\S+")

    def __call__(self, document: Document):
        for lexed in self.lexer(document):
            yield Region(lexed.start, lexed.end, lexed.lexemes["arguments"].strip(), file_next)


PARSERS = [
    FileParser(),
    PythonParser(),
    CodeBlockParser("output", check_output),
    CodeBlockParser("console", run_console),
    SkipParser(),
]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_doc_blocks_run_as_shown(path, monkeypatch):
    """Each runnable block, in document order, from the repository root."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))  # as `python` started in the repository root
    document = Document.parse(str(path), *PARSERS)
    for example in document:
        try:
            example.evaluate()
        except unittest.SkipTest:
            continue


FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)$", re.M)


def _fences(text: str):
    """(line number, language, preceding line) of every opening fence."""
    lines = text.splitlines()
    inside = False
    for number, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if not m:
            continue
        if not inside:
            before = next((x for x in reversed(lines[: number - 1]) if x.strip()), "")
            yield number, m.group("info").strip(), before
        inside = not inside


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_block_is_marked(path):
    """A block either runs, or its language says it is shown only, or a skip comment says why."""
    problems = []
    for line, language, before in _fences(path.read_text()):
        if language not in RUN | SHOWN:
            problems.append(f"line {line}: fence language {language!r} is not one of {sorted(RUN | SHOWN)}")
        skipped = re.match(r"<!-- skip: next (?P<why>.*) -->", before.strip())
        if skipped and not skipped.group("why").strip().strip("\"'"):
            problems.append(f"line {line}: a skip comment must give its reason")
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


def test_console_commands_are_parsed():
    block = textwrap.dedent(
        """\
        $ echo a \\
            b
        a b
        $ true
        """
    )
    assert _commands(block) == [("echo a  b", "a b"), ("true", "")]
    assert _check("x ... z\n", "x y z  \n")
    assert _check("│ a │ 1 │\n└───┘", "│ a    │ 1  │\n└──────┘")
    assert not _check("a b", "a c")


# -- the API reference and the links between pages ------------------------------------


def test_every_public_name_has_a_docstring_and_is_in_the_reference():
    """docs/reference.md is generated from docstrings: each public name needs both."""
    import inspect

    import seedloop
    import seedloop.check
    import seedloop.hypothesis

    reference = (ROOT / "docs" / "reference.md").read_text()
    missing, undocumented = [], []
    for module in (seedloop, seedloop.hypothesis, seedloop.check):
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{module.__name__}.{name}"
            listed = f"::: {qualified}" in reference or (
                module is not seedloop and re.search(rf"members: \[[^\]]*\b{name}\b", reference)
            )
            if not listed:
                missing.append(qualified)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
                if not (own or "").strip():
                    undocumented.append(qualified)
    assert not missing, f"add to docs/reference.md: {', '.join(f'::: {m}' for m in missing)}"
    assert not undocumented, f"give these a docstring: {', '.join(undocumented)}"


def _slugs(path: Path) -> set[str]:
    """Heading anchors as GitHub and mkdocs (Python-Markdown's toc) spell them."""
    slugs: set[str] = set()
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        if inside or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        github = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        mkdocs = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip())
        slugs |= {github, mkdocs}
    return slugs


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_relative_links_resolve(path):
    """Every link to another file of the repository (and to a heading in it) exists."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _slugs(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{_rel(path)}:\n" + "\n".join(broken)


def test_every_page_is_in_the_site_and_the_index():
    """A page nobody links to is a page nobody reads: mkdocs.yml's nav and docs/README.md."""
    nav = (ROOT / "mkdocs.yml").read_text()
    index = (ROOT / "docs" / "README.md").read_text()
    pages = [p.name for p in (ROOT / "docs").glob("*.md") if p.name != "README.md"]
    assert not [p for p in pages if f": {p}" not in nav], "add these pages to mkdocs.yml's nav"
    site_only = {"project.md", "changelog.md", "reference.md"}
    unlisted = [p for p in pages if p not in site_only and f"({p})" not in index]
    assert not unlisted, f"list these pages in docs/README.md: {unlisted}"
