"""Saved results: JSON files of the ``fastem-bench/1`` schema.

A result is the dict :func:`fastem.bench.run_suite` returns; the files under
benchmarks/baselines/ are such results.
"""
import json
from pathlib import Path

SCHEMA = "fastem-bench/1"


def load_result(path) -> dict:
    """Read a saved result, checking that it is one."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a fastem bench result ({SCHEMA})")
    return data


def save_result(result: dict, path) -> None:
    """Write a result as JSON, creating the directory if needed."""
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
