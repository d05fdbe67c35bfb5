"""Run the code blocks of a Markdown file and check what they print.

Conventions the documentation follows, so that its outputs are checked:

- Every fenced ```python block runs, the blocks of one file in order in one
  namespace. Every fenced ```sh block runs too, one command line at a time
  in bash; each line must start with ``fastem`` or ``python`` (pipes into
  other tools are fine). Indented code blocks (set-up commands) never run.
- A top-level statement whose comment reads ``# -> TEXT`` must print exactly
  TEXT (several such comments in one statement: one printed line each).
- A fenced ```text block that follows a code block with only blank lines
  between is everything that code block prints, compared exactly.
- An HTML comment on the line before a block changes how it runs; each
  gives its reason in parentheses:
  ``<!-- docs-test: skip (REASON) -->`` does not run the block;
  ``<!-- docs-test: setup (REASON): CODE -->`` runs the Python CODE, hidden
  from the reader, in the file's namespace first.

Failures name the Markdown file and line.
"""
from __future__ import annotations

import ast
import contextlib
import difflib
import io
import os
import re
import shlex
import subprocess
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*docs-test:\s*(skip|setup)\s*\(([^)]+)\)\s*(?::\s*(.*?))?\s*-->$")
EXPECT = re.compile(r"^#\s*->\s?(.*)$")
RUNNABLE = ("python", "sh")
SH_COMMANDS = ("fastem", "python")


@dataclass
class Block:
    """One fenced code block and what the Markdown around it says about it."""

    path: Path
    line: int                     # line of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None = None       # the reason, when the block must not run
    setup: list[str] = field(default_factory=list)
    output: str | None = None     # the ```text block that follows, if any
    output_line: int | None = None
    end: int = 0                  # line after the closing fence

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class DocError(AssertionError):
    """A block failed or printed something other than what its text says."""


def parse(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their markers and outputs."""
    lines = Path(path).read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise DocError(f"{path}:{start + 1}: code block is not closed")
        lang = match.group(1).lower()
        code = "\n".join(lines[start + 1:end]) + "\n"
        if lang == "text" and blocks and _only_blank(lines, blocks[-1].end, start):
            blocks[-1].output = code
            blocks[-1].output_line = start + 1
        else:
            block = Block(Path(path), start + 1, lang, code, end=end + 1)
            _read_markers(block, lines, start)
            blocks.append(block)
        i = end + 1
    return blocks


def _only_blank(lines: list[str], begin: int, end: int) -> bool:
    return all(not line.strip() for line in lines[begin:end])


def _read_markers(block: Block, lines: list[str], start: int) -> None:
    # The markers are the HTML comments directly above the fence.
    j = start - 1
    while j >= 0 and lines[j].lstrip().startswith("<!--"):
        text = lines[j].strip()
        match = MARKER.match(text)
        if match is None:
            if "docs-test" in text:
                raise DocError(f"{block.path}:{j + 1}: malformed marker {text!r}")
            break
        action, reason, code = match.groups()
        if action == "skip":
            block.skip = reason
        elif not code:
            raise DocError(f"{block.path}:{j + 1}: setup marker without code")
        else:
            block.setup.insert(0, code)
        j -= 1


def run_python(block: Block, namespace: dict) -> str:
    """Run a python block statement by statement in ``namespace``.

    Returns everything it printed; raises DocError when a statement fails or
    prints something other than its ``# -> `` comments say.
    """
    for code in block.setup:
        exec(compile(code, f"{block.path} (setup before line {block.line})", "exec"),
             namespace)
    # Blank lines in front keep the line numbers of the Markdown file in
    # tracebacks and messages.
    source = "\n" * block.line + block.code
    expected = _expected_lines(source)
    tree = ast.parse(source, filename=str(block.path))
    printed = []
    for statement in tree.body:
        buffer = io.StringIO()
        module = ast.Module(body=[statement], type_ignores=[])
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(module, str(block.path), "exec"), namespace)
        except Exception as exc:
            raise DocError(f"{block.path}:{statement.lineno}: the statement raised "
                           f"{type(exc).__name__}: {exc}") from exc
        out = buffer.getvalue()
        printed.append(out)
        wanted = [(n, text) for n, text in expected
                  if statement.lineno <= n <= statement.end_lineno]
        if wanted:
            want = "\n".join(text for _, text in wanted)
            got = out.rstrip("\n")
            if got != want:
                raise DocError(f"{block.path}:{wanted[0][0]}: printed\n{got}\n"
                               f"but the docs say\n{want}")
    return "".join(printed)


def _expected_lines(source: str) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    found = []
    for token in tokens:
        if token.type == tokenize.COMMENT:
            match = EXPECT.match(token.string)
            if match:
                found.append((token.start[0], match.group(1)))
    return found


def logical_lines(block: Block) -> list[tuple[int, str]]:
    """The command lines of a sh block, backslash continuations joined."""
    commands = []
    pending, first = "", 0
    for offset, line in enumerate(block.code.splitlines(), start=block.line + 1):
        if not pending:
            first = offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append((first, command))
    return commands


def run_sh(block: Block, cwd: Path, bin_dir: Path | None, timeout: float = 300) -> str:
    """Run a sh block line by line in bash, ``fastem`` and ``python`` taken
    from ``bin_dir`` (the environment under test); returns what it printed."""
    env = dict(os.environ)
    if bin_dir is not None:
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    printed = []
    for line, command in logical_lines(block):
        words = shlex.split(command, comments=True)
        if not words or words[0] not in SH_COMMANDS:
            raise DocError(f"{block.path}:{line}: only {', '.join(SH_COMMANDS)} commands run "
                           f"here; mark the block with <!-- docs-test: skip (REASON) -->")
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise DocError(f"{block.path}:{line}: `{command}` exited with "
                           f"{result.returncode}:\n{result.stderr}")
        printed.append(result.stdout)
    return "".join(printed)


def check_output(block: Block, printed: str) -> None:
    """Compare what a block printed with the ```text block after it, if any."""
    if block.output is None:
        return
    if printed.rstrip("\n") != block.output.rstrip("\n"):
        diff = difflib.unified_diff(block.output.splitlines(), printed.splitlines(),
                                    "the docs", "printed", lineterm="")
        raise DocError(f"{block.path}:{block.output_line}: the block at line {block.line} "
                       f"printed something else:\n" + "\n".join(diff))
