"""Flags that several `selfcritic eval` commands share, defined once: the endpoint's API
key and the dataset's fields."""

from __future__ import annotations

import argparse
import os
from typing import Any


def first_key() -> str | None:
    """The first of SELFCRITIC_API_KEY's comma-separated keys (None: unset)."""
    keys = os.environ.get("SELFCRITIC_API_KEY", "")
    return keys.split(",")[0].strip() or None


def add_api_key_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=first_key(),
                        help="API key for the endpoint [env SELFCRITIC_API_KEY]")


def add_dataset_flags(parser: argparse.ArgumentParser, *, references: bool = False) -> None:
    """The "dataset fields" group; `references` adds how to read the reference answer."""
    data = parser.add_argument_group("dataset fields")
    data.add_argument("--grader", help="grader of rows without a 'grader' field: numeric, "
                      "exact, choice or regex")
    data.add_argument("--answer-format", help="how answers are read for voting and merging: "
                      "auto, number, boxed or choice (default: by grader)")
    data.add_argument("--answer-pattern", help="a regex that reads answers instead (last "
                      "match; group 1 if any); the regex grader needs one")
    data.add_argument("--question-field", default="question", help="field with the question")
    data.add_argument("--answer-field", default="answer", help="field with the answer")
    if references:
        data.add_argument("--reference-format", help="extract the reference answer from the "
                          "answer field with this format (e.g. boxed for MATH solutions)")
        data.add_argument("--reference-pattern", help="or with this regex (e.g. '####\\s*(.+)' "
                          "for GSM8K)")


def fields_from_args(args: argparse.Namespace) -> Any:
    """The `Fields` the dataset flags describe."""
    from evaluation.dataset import Fields

    return Fields(question=args.question_field, answer=args.answer_field, grader=args.grader,
                  answer_format=args.answer_format, answer_pattern=args.answer_pattern,
                  reference_format=getattr(args, "reference_format", None),
                  reference_pattern=getattr(args, "reference_pattern", None))
