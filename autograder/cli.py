"""Command line: ``python -m autograder COMMAND``. Each command parses, calls one step, prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submitted notebook")
    grade.add_argument("submission", type=Path)
    grade.add_argument("--json", type=Path, metavar="OUT.json", help="also write the full result as JSON")
    grade.add_argument("--chapter", help="the chapter id (default: recognised from the notebook)")
    grade.add_argument("--timeout", type=float, default=sandbox.DEFAULT_TIMEOUT,
                       help="seconds for the whole submission (default %(default)s)")
    grade.add_argument("--test-timeout", type=float, default=sandbox.DEFAULT_TEST_TIMEOUT,
                       help="seconds for one grader test (default %(default)s)")
    grade.add_argument("--memory-gb", type=float, default=sandbox.DEFAULT_MEMORY / 2**30,
                       help="address-space limit of the grading process (default %(default)s)")

    commands.add_parser("release", help="regenerate course/ from solutions/ with nbgrader")

    course = commands.add_parser("nbgrader-course", help="create an nbgrader course directory")
    course.add_argument("directory", type=Path)

    args = parser.parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "release":
        from autograder.release import release_course
        for path in release_course():
            print(f"wrote {path}")
        return 0
    if args.command == "nbgrader-course":
        from autograder.release import make_nbgrader_course
        root = make_nbgrader_course(args.directory)
        print(f"nbgrader course in {root}: cd {root} && nbgrader generate_assignment 01_self_attention")
        return 0
    return 2


def _grade(args) -> int:
    if not args.submission.is_file():
        print(f"error: {args.submission} is not a file", file=sys.stderr)
        return 2
    result = sandbox.grade_submission(args.submission, chapter=args.chapter, timeout=args.timeout,
                                      test_timeout=args.test_timeout, memory=int(args.memory_gb * 2**30))
    print(result.table())
    if args.json:
        args.json.write_text(result.to_json() + "\n", encoding="utf-8")
    return 0
