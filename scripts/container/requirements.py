"""Print the requirements of pyproject.toml (base plus the named extras), one per line.

The Dockerfile installs these in a layer of their own, before the source is copied, so a
change to the code rebuilds in seconds instead of reinstalling vLLM and torch.

    python requirements.py pyproject.toml cpu,model
"""

from __future__ import annotations

import sys

import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    """Base dependencies followed by each extra's, in order, without duplicates."""
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines += optional[extra]
    return list(dict.fromkeys(lines))


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], [e for e in sys.argv[2].split(",") if e])))
