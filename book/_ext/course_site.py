"""The course site's own Sphinx extension: what jupyter-book 1.x does not do out of the box.

- Offline math. MathJax 3 is served from the site's ``_static/mathjax/`` (copied from the
  ``django-static-mathjax`` wheel, which ships MathJax 3.2.2's ``es5/`` bundle), not from a CDN,
  so formulas render on a laptop without internet.
- No console errors. sphinx-thebe registers its inline configuration script twice, so the second
  copy throws "Identifier 'THEBE_JS_URL' has already been declared": each page keeps one copy of
  every script. pydata-sphinx-theme logs "Got invalid theme mode" on a first visit, when
  localStorage holds no mode and the template's default is empty: the default becomes "auto".
- Glossary links. Each misconception of ``autograder.misconceptions`` names the exact heading
  (its markdown source) of the section that teaches it; every such section gets the label
  ``autograder.site.section_label(id)``, which the generated glossary links to, and a heading
  that no longer exists is a build warning (an error: the site is built with -W).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_DIR = "mathjax"  # under _static/
# tex-chtml.js and what it loads on demand: the fonts, the TeX extensions that \require or
# autoload pull in, the context menu and the assistive MathML. Not the other bundles, nor the
# speech-rule engine (4 MB, loaded only if a reader turns on speech in MathJax's menu).
MATHJAX_FILES = ["tex-chtml.js", "input/tex/extensions", "output/chtml", "ui", "a11y", "adaptors"]


def mathjax_package() -> Path:
    """MathJax's folder in the django-static-mathjax wheel: its LICENSE and es5/ bundle."""
    return Path(str(resources.files("mathjax"))) / "static" / "mathjax"


def configure(app, config) -> None:
    config.mathjax_path = f"{MATHJAX_DIR}/tex-chtml.js"
    config.html_context = {"default_mode": "auto", **(config.html_context or {})}


def one_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts, seen = [], set()
    for script in context.get("script_files", []):
        # The copies differ in priority and in an inline script's filename (None or "").
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts


def label_taught_sections(app, doctree) -> None:
    """Label the section of each misconception of this chapter page (the page is the chapter id)."""
    from autograder.misconceptions import MISCONCEPTIONS
    from autograder.site import section_label

    docname = app.env.docname
    taught = [m for m in MISCONCEPTIONS.values() if m.chapter == docname]
    sections = {}
    for section in doctree.findall(nodes.section):
        sections.setdefault(section[0].rawsource.strip(), section)  # the heading's markdown
    std = app.env.get_domain("std")
    for misconception in taught:
        section = sections.get(misconception.section)
        if section is None:
            logger.warning(f"no section headed {misconception.section!r}, which misconception "
                           f"{misconception.id} names", location=docname)
            continue
        std.labels[section_label(misconception.id)] = (docname, section["ids"][0], section[0].astext())
        std.anonlabels[section_label(misconception.id)] = (docname, section["ids"][0])


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    package, target = mathjax_package(), Path(app.outdir) / "_static" / MATHJAX_DIR
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package / "LICENSE", target / "LICENSE")
    for name in MATHJAX_FILES:
        if (package / "es5" / name).is_dir():
            shutil.copytree(package / "es5" / name, target / name, dirs_exist_ok=True)
        else:
            shutil.copyfile(package / "es5" / name, target / name)


def setup(app):
    app.connect("config-inited", configure)
    app.connect("html-page-context", one_copy_of_each_script, priority=900)
    app.connect("doctree-read", label_taught_sections)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
