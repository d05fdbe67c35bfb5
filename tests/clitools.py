"""Running the installed ``fastem`` console script as a user would."""
import os
import shutil
import subprocess
import sys
from pathlib import Path


def fastem_command():
    # The script installed beside this interpreter, so that a `fastem` of
    # another environment earlier on PATH is not picked up.
    search = os.pathsep.join([str(Path(sys.executable).parent),
                              os.environ.get("PATH", "")])
    script = shutil.which("fastem", path=search)
    return [script] if script else [sys.executable, "-m", "fastem"]


def run_fastem(*args, cwd=None, timeout=300):
    """Run ``fastem ARGS`` in a subprocess; the CompletedProcess, text mode."""
    return subprocess.run(fastem_command() + [str(a) for a in args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
