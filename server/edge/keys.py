"""Where API keys come from: `--api-key` and `--api-key-file`. Standard library only, so
the container's health check can read the same keys without loading the server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def parse_key_file(text: str) -> list[str]:
    """One key per line; blank lines and lines starting with '#' are ignored.

    >>> parse_key_file("# ops\\nk1\\n\\n  k2  \\n")
    ['k1', 'k2']
    """
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_key_file(path: str) -> list[str]:
    """The keys in `path`; a missing, unreadable or empty file is a `ValueError`, because
    a server told to use a key file must never start without keys."""
    try:
        keys = parse_key_file(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the API key file {path}: {exc}") from exc
    if not keys:
        raise ValueError(f"the API key file {path} holds no key (one per line; '#' starts "
                         "a comment)")
    return keys


def configured_keys(keys: Sequence[str], key_file: str | None) -> list[str]:
    """The keys given directly, then those in `key_file`, without repeats."""
    found = [*keys, *(read_key_file(key_file) if key_file else [])]
    return list(dict.fromkeys(found))
