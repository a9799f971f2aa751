"""The course site: the chapter notebooks as a jupyter-book (1.x), in two editions from one source.

    python -m autograder.site                         # the learner's edition -> book/_build/html
    python -m autograder.site --edition instructor    # the instructor's -> book/_build/instructor/html

jupyter-book copies each page's notebook verbatim to ``_sources/`` (the page's download), and the
tags that hide a cell still ship its source there, so the learner's edition is built from
notebooks that contain no solution to hide: the ``course/`` release, with the outputs of the
reference run put back into every cell that is neither a solution nor a hidden test (cells are
matched by nbgrader ``grade_id``). The instructor's edition is ``solutions/`` itself, with its
solution and hidden-test cells collapsed behind a toggle. Neither edition executes anything: the
outputs are those stored in ``solutions/``, which nbval verifies in ``make test``.

The steps: read each registered chapter's page notebook for the edition; stage the pages of
``book/``, those notebooks, the generated glossary and table of contents in a scratch directory;
run Sphinx through jupyter-book there, with warnings as errors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from autograder.exercises import CHAPTERS
from autograder.paths import PROJECT, SOLUTIONS
from autograder.misconceptions import MISCONCEPTIONS

BOOK = PROJECT / "book"
COURSE = PROJECT / "course"
BUILD = BOOK / "_build"
EDITIONS = ("learner", "instructor")
PAGES = ["index.md", "glossary.md", "instructor.md"]  # authored, in book/
ASSETS = ["favicon.svg"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class StaleRelease(RuntimeError):
    """course/ does not match solutions/: the reference outputs cannot be put back safely."""


def default_output(edition: str) -> Path:
    return BUILD / "html" if edition == "learner" else BUILD / edition / "html"


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _keeps_no_output(cell) -> bool:
    """A solution cell (the learner's to write) or a hidden-test cell (the graders')."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("solution") or nbgrader.get("grade"))


def learner_notebook(chapter: str) -> nbformat.NotebookNode:
    """The release notebook of ``chapter`` with the reference run's outputs in its other cells."""
    name = CHAPTERS[chapter].notebook
    if not (COURSE / name).exists():
        raise StaleRelease(f"course/{name} is missing: run `make release`")
    release = nbformat.read(COURSE / name, as_version=4)
    reference = {_grade_id(c): c for c in nbformat.read(SOLUTIONS / name, as_version=4).cells}
    for cell in release.cells:
        if cell.cell_type != "code" or _keeps_no_output(cell):
            continue
        source = reference.get(_grade_id(cell))
        if source is None or source.source != cell.source:
            raise StaleRelease(f"course/{name}, cell {_grade_id(cell)!r}, differs from solutions/: "
                               "run `make release`")
        cell.outputs = source.outputs
        cell.execution_count = source.execution_count
    return release


def instructor_notebook(chapter: str) -> nbformat.NotebookNode:
    """The reference notebook, its solution and hidden-test cells collapsed behind a toggle."""
    notebook = nbformat.read(SOLUTIONS / CHAPTERS[chapter].notebook, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and _keeps_no_output(cell):
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
    return notebook


def without_widget_views(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Widget outputs (a tqdm bar in a notebook) as their text: rendering the widget views would
    load the widget manager from a CDN, which fails offline and logs console errors."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
    return notebook


PAGE_NOTEBOOK = {"learner": learner_notebook, "instructor": instructor_notebook}


def section_label(misconception_id: str) -> str:
    """The label of the section that teaches a misconception (book/_ext/course_site.py sets it)."""
    return f"misconception-{misconception_id}"


def glossary_markdown() -> str:
    """book/glossary.md, then one definition list per published chapter, from the catalogue."""
    lines = [(BOOK / "glossary.md").read_text(encoding="utf-8").rstrip(), ""]
    for chapter in CHAPTERS.values():
        entries = [m for m in MISCONCEPTIONS.values() if m.chapter == chapter.id]
        if not entries:
            continue
        lines += [f"### {int(chapter.id[:2])}. {chapter.title}", ""]
        for m in entries:
            lines += [f"`{m.id}`", f": {m.hint[0].upper()}{m.hint[1:]}. Taught in "
                      f"[{m.section}](#{section_label(m.id)}).", ""]
    return "\n".join(lines) + "\n"


def table_of_contents() -> dict:
    return {"format": "jb-book", "root": "index", "parts": [
        {"caption": "Chapters", "chapters": [{"file": chapter} for chapter in CHAPTERS]},
        {"caption": "Reference", "chapters": [{"file": "glossary"}, {"file": "instructor"}]},
    ]}


def edition_config(edition: str) -> dict:
    config = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
    config["sphinx"]["local_extensions"] = {"course_site": str(BOOK / "_ext")}
    if edition == "instructor":
        config["title"] += " (instructor's edition)"
        config.setdefault("html", {})["announcement"] = (
            "Instructor's edition: the solutions are on these pages. Publish the learner's edition.")
        config["sphinx"]["config"].update(nb_code_prompt_show="Show the instructor's code",
                                          nb_code_prompt_hide="Hide the instructor's code")
    return config


def stage(edition: str, directory: Path) -> Path:
    """The book's source directory for ``edition``: pages, notebooks, glossary, toc, config."""
    directory.mkdir(parents=True, exist_ok=True)
    for page in PAGES:
        text = glossary_markdown() if page == "glossary.md" else (BOOK / page).read_text(encoding="utf-8")
        (directory / page).write_text(text, encoding="utf-8")
    for asset in ASSETS:
        shutil.copyfile(BOOK / asset, directory / asset)
    for chapter in CHAPTERS:
        notebook = without_widget_views(PAGE_NOTEBOOK[edition](chapter))
        nbformat.write(notebook, str(directory / CHAPTERS[chapter].notebook))
    (directory / "_toc.yml").write_text(yaml.safe_dump(table_of_contents(), sort_keys=False), encoding="utf-8")
    (directory / "_config.yml").write_text(yaml.safe_dump(edition_config(edition), sort_keys=False),
                                           encoding="utf-8")
    return directory


def build(edition: str = "learner", output: Path | None = None, quiet: bool = True) -> Path:
    """Build ``edition`` into ``output`` (default: book/_build/html, or .../instructor/html)."""
    from jupyter_book.sphinx import build_sphinx

    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r}; one of {EDITIONS}")
    output = Path(output or default_output(edition)).resolve()
    if output.exists() and any(output.iterdir()) and not (output / ".buildinfo").exists():
        raise RuntimeError(f"{output} is not empty and holds no earlier build of the site")
    with tempfile.TemporaryDirectory(prefix=f"book-{edition}-") as scratch:
        source = stage(edition, Path(scratch) / "source")
        html = Path(scratch) / "build" / "html"  # myst-nb writes a jupyter_execute/ beside it
        # What `jupyter-book build` passes besides the config file; this entry point (unlike the
        # command) writes the HTML exactly where it is asked to.
        overrides = {"external_toc_path": (source / "_toc.yml").as_posix(), "latex_individualpages": False}
        result = build_sphinx(source, html, path_config=str(source / "_config.yml"), noconfig=True,
                              confoverrides=overrides, doctreedir=Path(scratch) / "doctrees",
                              freshenv=True, warningiserror=True, keep_going=True, quiet=quiet)
        if result != 0:
            raise RuntimeError(f"the {edition}'s edition did not build: see Sphinx's messages above "
                               "(they name the staged copies of the pages)")
        shutil.rmtree(output, ignore_errors=True)  # nothing of an earlier build stays
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(html, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--edition", choices=EDITIONS, default="learner")
    parser.add_argument("--out", type=Path, help="the HTML directory (default: book/_build/html, or "
                                                 "book/_build/instructor/html)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        output = build(args.edition, args.out)
    except RuntimeError as error:  # a stale release, or Sphinx's warnings (printed above)
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"the {args.edition}'s edition is in {output} ({time.perf_counter() - start:.0f} s); "
          f"open {output / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
