"""The ```python blocks in the user docs run, in order, and print what their comments say.

Each Markdown file's blocks run top to bottom in one fresh namespace (after
``probdl.set_rng_seed(0)``), as a reader pasting them into one session would. A
``print(...)`` line that shows its output in a comment is also an output check, in
either of two forms::

    print(x * 2)          # tensor([2., 4.])

    print(long_message)
    # ValueError: ... (the comment lines right below a print that has no comment of its own)

What ``print`` writes must equal the comment up to whitespace (so a matrix shown on
one line matches its multi-line repr). A failing block is reported with its number,
its first line in the file, the exception and its source.
"""
from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

import probdl

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["docs/engine.md", "docs/nn.md", "docs/distributions.md", "docs/modeling.md", "docs/svi.md", "docs/mcmc.md",
        "docs/gp.md", "README.md"]

_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PRINT_WITH_COMMENT = re.compile(r"^(?P<indent>[ \t]*)print\((?P<args>.*)\)[ \t]+#[ \t]?(?P<expected>.*?)[ \t]*$")
_BARE_PRINT = re.compile(r"^(?P<indent>[ \t]*)print\((?P<args>.*)\)[ \t]*$")
_COMMENT_LINE = re.compile(r"^[ \t]*#[ \t]?(?P<text>.*?)[ \t]*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text, each with the line number of its first code line."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def _normalize(s: str) -> str:
    return " ".join(s.split())


def _check_output(lineno: int, expected: str, *args: object) -> None:
    got = " ".join(str(a) for a in args)
    print(got)
    if _normalize(got) != _normalize(expected):
        raise AssertionError(f"line {lineno} prints\n    {_normalize(got)}\nbut its comment says\n    {expected}")


def _instrument(source: str, first_line: int) -> str:
    """Turn each ``print(...)`` that shows its output in a comment into a call that checks the printed text."""
    lines = source.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _PRINT_WITH_COMMENT.match(line)
        expected = m["expected"] if m else None
        if m is None and (m := _BARE_PRINT.match(line)):
            below = []
            for nxt in lines[i + 1:]:
                c = _COMMENT_LINE.match(nxt)
                if c is None:
                    break
                below.append(c["text"])
            expected = "\n".join(below) if below else None
        if expected is not None:
            line = f"{m['indent']}__check_output__({first_line + i}, {expected!r}, {m['args']})"
        out.append(line)
    return "\n".join(out) + "\n"


def run_markdown(text: str, name: str) -> int:
    """Run every ```python block of ``text`` in order in one namespace; return how many ran.

    Raises AssertionError naming the block (1-based), its line and the exception of the first block that fails.
    Global settings a page changes (default dtype, grad mode) are restored afterwards.
    """
    blocks = python_blocks(text)
    probdl.set_rng_seed(0)
    namespace: dict = {"__name__": "__docs__", "__check_output__": _check_output}
    old_dtype = probdl.get_default_dtype()
    try:
        with probdl.enable_grad():  # restores the grad mode on exit, whatever the page did
            for k, (line, source) in enumerate(blocks, start=1):
                try:
                    exec(compile(_instrument(source, line), f"{name} (block {k}, line {line})", "exec"), namespace)
                except Exception as e:  # noqa: BLE001  (any failure of a block fails the docs)
                    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))
                    raise AssertionError(f"{name}: block {k} (line {line}) raised {type(e).__name__}: {e}\n\n"
                                         f"--- block {k} ---\n{source}--- traceback ---\n{tb}") from None
    finally:
        probdl.set_default_dtype(old_dtype)
    return len(blocks)


@pytest.mark.parametrize("path", DOCS)
def test_doc_examples_run(path: str) -> None:
    file = ROOT / path
    assert file.exists(), f"{path} is missing"
    failure, n = None, 0
    try:
        n = run_markdown(file.read_text(encoding="utf-8"), path)
    except AssertionError as e:
        failure = str(e)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    assert n > 0, f"{path} has no ```python blocks to run"


# ------------------------------------------------------------------ the runner itself can fail
_BAD_DOC = """\
# A page

```python
x = 1
```

Some text.

```python
y = x + 1
raise ValueError("boom")
```
"""


def test_runner_reports_the_failing_block() -> None:
    with pytest.raises(AssertionError, match=r"block 2 \(line 10\) raised ValueError: boom"):
        run_markdown(_BAD_DOC, "bad.md")


def test_runner_shares_one_namespace_and_checks_printed_output() -> None:
    good = ("```python\nimport probdl as pd\nt = pd.tensor([1.0, 2.0])\n```\n\n"
            "```python\nprint(t * 2)  # tensor([2., 4.])\n```\n")
    assert run_markdown(good, "good.md") == 2
    wrong = good.replace("tensor([2., 4.])", "tensor([2., 5.])")
    with pytest.raises(AssertionError, match=r"block 2 .*prints"):
        run_markdown(wrong, "wrong.md")


def test_output_in_the_comment_lines_below_a_print_is_checked() -> None:
    doc = "```python\nprint('a  b')\n# a b\nprint('c')\n```\n"
    assert run_markdown(doc, "below.md") == 1
    with pytest.raises(AssertionError, match=r"line 2 prints"):
        run_markdown(doc.replace("# a b", "# a c"), "below.md")


def test_other_code_blocks_are_not_run() -> None:
    assert run_markdown("```text\nraise ValueError\n```\n\n```python\nz = 3\n```\n", "mixed.md") == 1
