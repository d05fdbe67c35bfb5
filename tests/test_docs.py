"""The README's and the tutorial's code blocks run, and print what the text
around them says (conventions in tests/doctools.py)."""
import os
import re
import sys
from pathlib import Path

import doctools
import pytest
from threadpoolctl import threadpool_limits

from clitools import fastem_command

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "tutorial.md"]
SET_UP_COMMANDS = ['pip install . && fastem demo', 'pip install -e ".[test]" && pytest']


@pytest.fixture
def doc_environment(tmp_path, monkeypatch):
    """A fresh working directory, Agg plots and one OpenMP thread.

    The printed numbers do not depend on the thread count; one thread keeps
    the run fast on a loaded machine, where waiting OpenMP threads spin.
    """
    matplotlib = pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    matplotlib.use("Agg")
    with threadpool_limits(1, user_api="openmp"):
        yield tmp_path
    import matplotlib.pyplot as plt
    plt.close("all")


def run_document(path, cwd):
    """Run every block of one Markdown file in order in ``cwd``."""
    namespace = {"__name__": "__docs__"}
    bin_dir = Path(fastem_command()[0]).parent
    ran = 0
    try:
        for block in doctools.parse(path):
            if block.skip or block.lang not in doctools.RUNNABLE:
                continue
            if block.lang == "python":
                printed = doctools.run_python(block, namespace)
            else:
                printed = doctools.run_sh(block, cwd, bin_dir)
            doctools.check_output(block, printed)
            ran += 1
    finally:
        # A Dask client of a block that failed must not outlive the test.
        client = namespace.get("client")
        if client is not None and hasattr(client, "close"):
            client.close()
    return ran


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_document_runs_and_prints_what_it_says(path, doc_environment):
    pytest.importorskip("dask.distributed")
    mismatch = None
    try:
        assert run_document(path, doc_environment) > 0
    except doctools.DocError as exc:
        if exc.__cause__ is not None:
            raise               # the traceback of a failing statement helps
        mismatch = str(exc)
    if mismatch:
        pytest.fail(mismatch, pytrace=False)


def test_readme_set_up_commands_unchanged():
    # The two commands a newcomer types first are indented blocks of their
    # own, word for word.
    lines = (ROOT / "README.md").read_text().splitlines()
    for command in SET_UP_COMMANDS:
        assert "    " + command in lines, command


def test_every_block_is_run_or_skipped_with_a_reason():
    for path in DOCS:
        for block in doctools.parse(path):
            assert block.lang in doctools.RUNNABLE + ("text",), \
                f"{block.where}: a ```{block.lang} block is neither run nor output"
            assert block.skip is None or block.skip.strip(), block.where


# The checker itself: a wrong number in a document must fail, naming the line.

def at(path, line):
    return re.escape(f"{path}:{line}: ")


def write(tmp_path, text):
    path = tmp_path / "doc.md"
    path.write_text(text)
    return path


def test_wrong_inline_expectation_fails_with_file_and_line(tmp_path):
    path = write(tmp_path, "Intro\n\n```python\nx = 2\nprint(x + 1)  # -> 4\n```\n")
    [block] = doctools.parse(path)
    with pytest.raises(doctools.DocError, match=at(path, 5) + r"printed\n3\nbut the docs say\n4"):
        doctools.run_python(block, {})


def test_right_inline_expectation_passes(tmp_path):
    path = write(tmp_path, "```python\nprint('a', [1.5])  # -> a [1.5]\nprint(1)\n```\n")
    [block] = doctools.parse(path)
    assert doctools.run_python(block, {}) == "a [1.5]\n1\n"


def test_output_block_is_compared_exactly(tmp_path):
    path = write(tmp_path, "```python\nfor i in range(2):\n    print(i)\n```\n\n"
                           "```text\n0\n2\n```\n")
    [block] = doctools.parse(path)
    assert block.output == "0\n2\n" and block.output_line == 6
    printed = doctools.run_python(block, {})
    with pytest.raises(doctools.DocError, match=at(path, 6) + r"the block at line 1 printed "
                                                             r"something else:\n--- the docs"):
        doctools.check_output(block, printed)


def test_error_in_a_block_names_its_line(tmp_path):
    path = write(tmp_path, "\n```python\nx = 1\ny = x / 0\n```\n")
    [block] = doctools.parse(path)
    with pytest.raises(doctools.DocError, match=at(path, 4) + r"the statement raised "
                                                "ZeroDivisionError"):
        doctools.run_python(block, {})


def test_markers_skip_and_set_up(tmp_path):
    path = write(tmp_path, "<!-- docs-test: skip (needs a cluster) -->\n```python\n"
                           "raise SystemExit\n```\n\n"
                           "<!-- docs-test: setup (small data): n = 3 -->\n"
                           "```python\nprint(n)  # -> 3\n```\n")
    skipped, set_up = doctools.parse(path)
    assert skipped.skip == "needs a cluster"
    assert set_up.setup == ["n = 3"]
    assert doctools.run_python(set_up, {}) == "3\n"


def test_malformed_marker_is_an_error(tmp_path):
    path = write(tmp_path, "<!-- docs-test: skip -->\n```python\npass\n```\n")
    with pytest.raises(doctools.DocError, match=at(path, 1) + r"malformed marker"):
        doctools.parse(path)


def test_sh_block_runs_only_the_cli_and_python(tmp_path):
    path = write(tmp_path, "```sh\npython -c \"print(6 * 7)\"  # the answer\n"
                           "rm -rf data\n```\n")
    [block] = doctools.parse(path)
    bin_dir = Path(fastem_command()[0]).parent
    with pytest.raises(doctools.DocError, match=at(path, 3) + r"only fastem, python"):
        doctools.run_sh(block, tmp_path, bin_dir)
    block.code = block.code.replace("rm -rf data\n", "")
    assert doctools.run_sh(block, tmp_path, bin_dir) == "42\n"


def test_sh_block_failure_names_the_line(tmp_path):
    path = write(tmp_path, "```sh\npython -c 'raise SystemExit(3)'\n```\n")
    [block] = doctools.parse(path)
    bin_dir = Path(fastem_command()[0]).parent
    with pytest.raises(doctools.DocError, match=at(path, 2) + r"`python -c .*` exited with 3"):
        doctools.run_sh(block, tmp_path, bin_dir)


def test_sh_python_is_the_one_under_test(tmp_path):
    path = write(tmp_path, "```sh\npython -c \"import sys; print(sys.prefix)\"\n```\n")
    [block] = doctools.parse(path)
    bin_dir = Path(fastem_command()[0]).parent
    printed = doctools.run_sh(block, tmp_path, bin_dir).strip()
    assert os.path.samefile(printed, sys.prefix)
