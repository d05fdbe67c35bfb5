"""The ``fastem`` command line, run as a user runs it."""
import importlib.util
import math
import re

import pytest

import fastem
from clitools import run_fastem as run
from fastem import cli
from fastem.datasets import load_faithful

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TABLE_HEADER = re.compile(r"^\s+K\s+loglik/sample\s+BIC\s+AIC\s+n_iter\s+converged$",
                          re.MULTILINE)
TABLE_ROW = re.compile(
    r"^([ *])\s+(\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(\d+)\s+(yes|no)$",
    re.MULTILINE,
)
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def parse_table(stdout):
    rows = [(mark == "*", int(k), float(loglik), float(bic), float(aic),
             int(n_iter), converged == "yes")
            for mark, k, loglik, bic, aic, n_iter, converged
            in TABLE_ROW.findall(stdout)]
    assert rows, stdout
    return rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("demo")
    out = cwd / "plots" / "faithful.png"
    out.parent.mkdir()
    result = run("demo", "--out", str(out), "--seed", "0", cwd=cwd)
    return result, out


def test_demo_runs(demo):
    result, _ = demo
    assert result.returncode == 0, result.stderr
    assert TABLE_HEADER.search(result.stdout), result.stdout
    assert "Traceback" not in result.stderr
    assert [row[1] for row in parse_table(result.stdout)] == [1, 2, 3, 4, 5, 6]


def test_demo_chooses_minimum_bic(demo):
    result, _ = demo
    rows = parse_table(result.stdout)
    marked = [row for row in rows if row[0]]
    assert len(marked) == 1
    _, k, _, bic, *_ = marked[0]
    assert bic == min(row[3] for row in rows)
    # Two clusters are plain to the eye; a third component for the
    # stragglers between them is the only other reasonable answer.
    assert k in {2, 3}
    assert f"Chosen model (minimum BIC): K = {k}," in result.stdout
    assert len(re.findall(r"^component \d+: weight", result.stdout,
                          re.MULTILINE)) == k

    X = load_faithful()
    gm = fastem.GaussianMixture(n_components=k, covariance_type="full",
                                n_init=3, random_state=0).fit(X)
    # The table prints BIC with three decimals.
    assert gm.bic(X) == pytest.approx(bic, abs=1e-3)


def test_demo_table_is_one_set_of_parameters(demo):
    # loglik, BIC and AIC of a row are of the same (final) parameters: the
    # log-likelihood that BIC and AIC imply is the one printed, the mean
    # log-likelihood of the fitted model (its score), for every K
    result, _ = demo
    X = load_faithful()
    n = len(X)
    for _, k, loglik, bic, aic, *_ in parse_table(result.stdout):
        n_params = round((bic - aic) / (math.log(n) - 2))
        assert (2 * n_params - aic) / (2 * n) == pytest.approx(loglik, abs=1e-5), k
        gm = fastem.GaussianMixture(n_components=k, covariance_type="full",
                                    n_init=3, random_state=0).fit(X)
        assert gm.score(X) == pytest.approx(loglik, abs=1e-5), k


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib not installed")
def test_demo_writes_png(demo):
    result, out = demo
    assert out.is_file()
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert f"plot written to {out}" in result.stdout


def test_demo_without_matplotlib(monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a, **kw: None if name == "matplotlib" else find_spec(name, *a, **kw),
    )
    assert cli.main(["demo", "--max-components", "1"]) == 0
    out = capsys.readouterr().out
    assert "plot skipped" in out and "fastem[plot]" in out


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastem {fastem.__version__}"


def test_unknown_option(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "usage: fastem" in err
    assert "demo" in err


@pytest.mark.parametrize("args", [["--max-components", "0"],
                                  ["--max-components", "two"],
                                  ["--seed", "-1"]])
def test_bad_option_values(args, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", *args])
    assert exc.value.code == 2
    assert f"argument {args[0]}" in capsys.readouterr().err


def test_error_is_one_line(capsys):
    assert cli.main(["demo", "--max-components", "1000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastem: error: --max-components must be at most")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--debug", "demo", "--max-components", "1000"],
                                  ["demo", "--max-components", "1000", "--debug"]])
def test_debug_shows_the_exception(argv):
    with pytest.raises(ValueError, match="--max-components must be at most"):
        cli.main(argv)


def test_a_library_message_gets_one_prefix(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk" * 50)
    result = run("info", junk)
    assert result.returncode == 1
    assert result.stderr.startswith(f"fastem: error: {junk} is not a fastem model file")


# Ctrl-C while a module loads: the subprocess raises KeyboardInterrupt when
# the module named by argv[1] is imported, then runs the command in argv[2:].
INTERRUPTED_IMPORT = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from fastem.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("module, command", [
    ("fastem.bench", ["info", "m.npz"]),            # while the parser is built
    ("fastem._cli_data", ["fit", "X.npy", "-k", "1"]),  # in a command
    ("numpy", ["info", "m.npz"]),                   # the heavy imports, which
    ("sklearn", ["fit", "X.npy", "-k", "1"]),       # `import fastem` defers
])
def test_ctrl_c_during_an_import_is_one_line(module, command):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, module, *command],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "fastem: interrupted\n"
