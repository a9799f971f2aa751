"""Command line: ``python -m autograder COMMAND``. Each command parses, calls one step, prints.

``parser()`` declares the commands; each subparser names, with ``set_defaults(run=...)``, the
small function below that carries it out and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import sandbox


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submitted notebook")
    grade.add_argument("submission", type=Path)
    grade.add_argument("--json", type=Path, metavar="OUT.json", help="also write the full result as JSON")
    grade.add_argument("--chapter", help="the chapter id (default: recognised from the notebook)")
    _limits(grade)
    grade.set_defaults(run=grade_one)

    diff = commands.add_parser("diff", help="run a notebook with nbval against the reference's outputs")
    diff.add_argument("submission", type=Path)
    diff.set_defaults(run=diff_outputs)

    every = commands.add_parser("grade-all", help="grade a whole class, in parallel, resuming where it stopped")
    every.add_argument("submissions", type=Path, help="nbgrader's submitted/, or a folder of notebooks")
    every.add_argument("--out", type=Path, default=Path("grading-results"),
                       help="where per-student JSON, class.csv, the summary and feedback go (default %(default)s)")
    every.add_argument("--jobs", type=int, default=None, help="parallel submissions (default: the number of cores)")
    every.add_argument("--scheduler", metavar="ADDRESS", help="grade on a Dask distributed cluster instead")
    every.add_argument("--quiet", action="store_true", help="no progress bar")
    _limits(every)
    every.set_defaults(run=grade_all)

    export = commands.add_parser("export-gradebook", help="write grade-all's results into an nbgrader gradebook")
    export.add_argument("results", type=Path, help="the --out folder of grade-all")
    export.add_argument("course", type=Path, help="the nbgrader course directory (holds gradebook.db)")
    export.set_defaults(run=export_gradebook)

    bundle = commands.add_parser("gradescope", help="build the Gradescope autograder zip")
    bundle.add_argument("--out", type=Path, default=Path("gradescope.zip"))
    bundle.set_defaults(run=gradescope_bundle)

    on_gradescope = commands.add_parser("gradescope-run", help="(what run_autograder calls on Gradescope)")
    on_gradescope.add_argument("submission", type=Path)
    on_gradescope.add_argument("results", type=Path)
    on_gradescope.set_defaults(run=gradescope_run)

    commands.add_parser("release", help="regenerate course/ from solutions/ with nbgrader").set_defaults(run=release)

    course = commands.add_parser("nbgrader-course", help="create an nbgrader course directory")
    course.add_argument("directory", type=Path)
    course.set_defaults(run=nbgrader_course)
    return root


def _limits(command: argparse.ArgumentParser) -> None:
    command.add_argument("--timeout", type=float, default=sandbox.DEFAULT_TIMEOUT,
                         help="seconds for a whole submission (default %(default)s)")
    command.add_argument("--test-timeout", type=float, default=sandbox.DEFAULT_TEST_TIMEOUT,
                         help="seconds for one grader test (default %(default)s)")
    command.add_argument("--memory-gb", type=float, default=sandbox.DEFAULT_MEMORY / 2**30,
                         help="address-space limit of each grading process (default %(default)s)")


def _limit_kwargs(args) -> dict:
    return {"timeout": args.timeout, "test_timeout": args.test_timeout, "memory": int(args.memory_gb * 2**30)}


# ---- one function per command ----------------------------------------------------------------

def grade_one(args) -> int:
    from autograder.views import as_json, table
    if not args.submission.is_file():
        print(f"error: {args.submission} is not a file", file=sys.stderr)
        return 2
    result = sandbox.grade_submission(args.submission, chapter=args.chapter, **_limit_kwargs(args))
    print(table(result))
    if args.json:
        args.json.write_text(as_json(result) + "\n", encoding="utf-8")
    return 0


def diff_outputs(args) -> int:
    from autograder.nbval_diff import diff
    return diff(args.submission)


def grade_all(args) -> int:
    from autograder.classroom import grade_class
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory", file=sys.stderr)
        return 2
    records = grade_class(args.submissions, args.out, jobs=args.jobs, scheduler=args.scheduler,
                          progress=not args.quiet, **_limit_kwargs(args))
    print(f"graded {len(records)} submissions: {args.out / 'class.csv'}, {args.out / 'summary.md'}, "
          f"{args.out / 'feedback'}/")
    return 0


def export_gradebook(args) -> int:
    from autograder.classroom import read_records
    from autograder.gradebook import export_to_gradebook
    count = export_to_gradebook(read_records(args.results), args.course)
    print(f"wrote {count} submissions into {args.course / 'gradebook.db'}")
    return 0


def gradescope_bundle(args) -> int:
    from autograder.gradescope import build_bundle
    print(f"wrote {build_bundle(args.out)}")
    return 0


def gradescope_run(args) -> int:
    from autograder.gradescope import run
    data = run(args.submission, args.results)
    print(f"score {data['score']:g}: {args.results}")
    return 0


def release(args) -> int:
    from autograder.release import release_course
    for path in release_course():
        print(f"wrote {path}")
    return 0


def nbgrader_course(args) -> int:
    from autograder.release import make_nbgrader_course
    root = make_nbgrader_course(args.directory)
    print(f"nbgrader course in {root}: cd {root} && nbgrader generate_assignment 01_self_attention")
    return 0
