"""The course site: both editions build, and headless Chromium reads the learner's edition as a
reader would (pages, figures, formulas, navigation, search). No solution reaches the learner's
edition: not its pages, not its search index, not its downloadable notebooks.

The browser is Debian's chromium, driven by selenium through Debian's chromedriver (`make test`
installs both). It resolves no host but localhost, so a page that reaches for a CDN fails here as
it would on a laptop without internet. A screenshot of the first chapter page is saved to
book/_build/test-artifacts/.
"""

import functools
import html
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.exercises import CHAPTERS
from autograder.misconceptions import MISCONCEPTIONS
from conftest import COURSE, PROJECT, SOLUTIONS

# Its tests share module-scoped fixtures (the site, the browser): conftest.ONE_WORKER_MODULES keeps them
# on one worker.
pytestmark = pytest.mark.slow

BOOK = PROJECT / "book"
ARTIFACTS = BOOK / "_build" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PAGE_ORDER = ["index", *CHAPTERS, "glossary", "instructor"]
# DropPath is taught in chapter 4; until that chapter is published, search for a word of chapter 1.
SEARCH = ("DropPath", "04_vit_block") if "04_vit_block" in CHAPTERS else ("softmax", "01_self_attention")
TIMEOUT = 20  # seconds for a page, its formulas and its search results


# ---- what the learner may see, and what only the instructor may ------------------------------

def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def shows_outputs(cell) -> bool:
    """Whether the learner's edition shows this reference cell's outputs: neither solution nor hidden test."""
    return not (nbgrader(cell).get("solution") or nbgrader(cell).get("grade"))


def text_of(page: str) -> str:
    """An HTML page's text, as a reader sees it (code included)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return "\n".join(v for k, v in output.get("data", {}).items() if k.startswith("text/"))


def public_text() -> str:
    """Everything the learner's edition may show, read from the sources directly: the released
    notebooks, the reference outputs of cells that are neither solutions nor hidden tests, the
    authored pages and the catalogue that the glossary is made of."""
    parts = [p.read_text(encoding="utf-8") for p in sorted(BOOK.glob("*.md"))]
    parts += [f"{m.id} {m.hint} {m.section}" for m in MISCONCEPTIONS.values()]
    for chapter in CHAPTERS.values():
        parts += [c.source for c in nbformat.read(COURSE / chapter.notebook, as_version=4).cells]
        parts += [output_text(o) for c in reference(chapter.id).cells if shows_outputs(c) for o in c.get("outputs", [])]
    return "\n".join(parts)


def reference(chapter: str) -> nbformat.NotebookNode:
    return nbformat.read(SOLUTIONS / CHAPTERS[chapter].notebook, as_version=4)


def solution_bodies(chapter: str) -> dict[str, str]:
    """grade_id -> the code between BEGIN SOLUTION and END SOLUTION of each solution cell (all its
    regions: a class has one per method)."""
    return {nbgrader(c)["grade_id"]: "\n".join(re.findall(r"### BEGIN SOLUTION(.*?)### END SOLUTION", c.source, re.S))
            for c in reference(chapter).cells if nbgrader(c).get("solution")}


@functools.cache
def secrets() -> dict[str, list[str]]:
    """grade_id -> the lines of its reference solution that appear nowhere in the public text."""
    public = public_text()
    return {grade_id: [line.strip() for line in body.splitlines() if line.strip() and line.strip() not in public]
            for chapter in CHAPTERS for grade_id, body in solution_bodies(chapter).items()}


@functools.cache
def english():
    from sphinx.search.en import SearchEnglish
    return SearchEnglish({})


def stem(word: str) -> str:
    return english().stem(word).lower()  # as Sphinx's index builder stems a word


@functools.cache
def secret_words() -> dict[str, str]:
    """Words of the reference solutions whose search term (Sphinx's stem) no public word has,
    each with that term."""
    public = {stem(w) for w in re.findall(r"\w+", public_text())}
    words = {w for chapter in CHAPTERS for body in solution_bodies(chapter).values()
             for w in re.findall(r"[A-Za-z_]\w{2,}", body)}
    return {w: stem(w) for w in sorted(words) if stem(w) not in public and english().word_filter(stem(w))}


def views(path: Path) -> list[str]:
    """The texts a reader could get from one file of the site."""
    text = path.read_bytes().decode("utf-8", errors="ignore")
    found = [text]
    if path.suffix == ".html":
        found.append(text_of(text))
    if path.suffix == ".ipynb":
        notebook = nbformat.reads(text, as_version=4)
        found.append("\n".join(c.source + "\n" + "\n".join(output_text(o) for o in c.get("outputs", []))
                               for c in notebook.cells))
    return found


def index_terms(site: Path) -> set[str]:
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    return set(index["terms"]) | set(index["titleterms"])


def leaks(site: Path) -> dict[str, list[str]]:
    """file -> the secret lines found in it."""
    found = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file() and p.suffix not in {".png", ".woff", ".ico"}):
        texts = views(path)
        hits = [line for lines in secrets().values() for line in lines if any(line in t for t in texts)]
        if hits:
            found[str(path.relative_to(site))] = hits
    return found


# ---- the two editions, built once --------------------------------------------------------------

def build(edition: str, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "autograder.site", "--edition", edition, "--out", str(out)],
                          cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, f"the {edition}'s edition did not build:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def learner_site(tmp_path_factory):
    return build("learner", tmp_path_factory.mktemp("learner") / "html")


@pytest.fixture(scope="module")
def instructor_site(tmp_path_factory):
    return build("instructor", tmp_path_factory.mktemp("instructor") / "html")


# ---- static checks of the built HTML -----------------------------------------------------------

def test_every_exercise_has_solution_text_to_look_for():
    assert all(secrets().values()), {k: v for k, v in secrets().items() if not v}
    assert secret_words()


def test_learner_edition_has_no_solution_in_pages_downloads_or_search_index(learner_site):
    assert {p.name for p in (learner_site / "_sources").glob("*.ipynb")} == {c.notebook for c in CHAPTERS.values()}
    assert leaks(learner_site) == {}
    assert index_terms(learner_site) & set(secret_words().values()) == set()


def test_instructor_edition_has_every_solution_behind_a_toggle(instructor_site):
    for chapter in CHAPTERS.values():
        page = (instructor_site / f"{chapter.id}.html").read_text(encoding="utf-8")
        toggles = re.findall(r'<details class="[^"]*hide above-input.*?</details>', page, re.S)
        hidden = text_of("\n".join(toggles))
        for grade_id in solution_bodies(chapter.id):
            assert all(line in hidden for line in secrets()[grade_id]), f"{grade_id} is not behind a toggle"
    # The scan that finds nothing in the learner's edition finds every line here.
    found = {line for lines in leaks(instructor_site).values() for line in lines}
    assert found == {line for lines in secrets().values() for line in lines}
    assert set(secret_words().values()) <= index_terms(instructor_site)


def test_learner_edition_shows_the_reference_outputs_of_the_other_cells(learner_site):
    for chapter in CHAPTERS:
        text = text_of((learner_site / f"{chapter}.html").read_text(encoding="utf-8"))
        printed = [o["text"].strip() for c in reference(chapter).cells if shows_outputs(c)
                   for o in c.get("outputs", []) if o.get("output_type") == "stream" and o["text"].strip()]
        assert printed and all(p in text for p in printed), chapter


def plain(text: str) -> str:
    """Sphinx's smart quotes back to ASCII."""
    return text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))


def test_glossary_links_every_published_misconception_to_its_section(learner_site):
    glossary = (learner_site / "glossary.html").read_text(encoding="utf-8")
    published = [m for m in MISCONCEPTIONS.values() if m.chapter in CHAPTERS]
    assert published
    for m in published:
        entry = re.search(rf"<code[^>]*><span class=\"pre\">{m.id}</span></code>.*?</dd>", glossary, re.S)
        assert entry, f"{m.id} is not in the glossary"
        link = re.search(rf'href="{m.chapter}\.html#([^"]+)"', entry.group(0))
        assert link, f"{m.id} does not link to its chapter"
        chapter_page = (learner_site / f"{m.chapter}.html").read_text(encoding="utf-8")
        heading = re.search(rf'<section id="{link.group(1)}">\s*<h\d>(.*?)<a class="headerlink"', chapter_page, re.S)
        assert heading, f"{m.id}: no section #{link.group(1)} in {m.chapter}.html"
        shown = text_of(heading.group(1)).replace("\\(", "").replace("\\)", "")  # MathJax's delimiters
        assert plain(shown) == re.sub(r"[$`]", "", m.section), f"{m.id}: the section is headed {shown!r}"


def test_every_command_on_the_pages_exists():
    commands = [line.strip() for page in BOOK.glob("*.md")
                for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
                for line in block.splitlines()]
    autograder = {line.split()[line.split().index("autograder") + 1] for line in commands if "-m autograder " in line}
    assert autograder
    for command in sorted(autograder):
        done = subprocess.run([sys.executable, "-m", "autograder", command, "--help"], cwd=PROJECT,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"python -m autograder {command}: {done.stderr}"
    for line in commands:
        if line.startswith("make "):
            done = subprocess.run(["make", "-n", *line.split()[1:]], cwd=PROJECT, capture_output=True, text=True)
            assert done.returncode == 0, f"{line}: {done.stderr}"


# ---- the browser ---------------------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    servers = []

    def start(root: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=root))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are not installed: `make test` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,1600",
                     # Offline, whatever the machine's network: every host but localhost fails to resolve.
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so Selenium Manager downloads nothing.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    yield driver
    driver.quit()


def console_errors(driver) -> list[str]:
    """The console's errors since the last call (failed loads included)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def settle(driver) -> None:
    """Wait for the page, then for MathJax's typesetting where the page has formulas."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, TIMEOUT).until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
            MathJax.startup.promise.then(() => done(true), error => done(String(error)));
        } else { done(null); }""")


def visit(driver, url: str) -> None:
    driver.get_log("browser")  # forget the previous page's messages
    driver.get(url)
    settle(driver)


def decoded_figures(driver) -> list[list]:
    """[src, natural width, natural height] of every image in the page's cell outputs."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const images = [...document.querySelectorAll('.cell_output img')];
        Promise.all(images.map(img => img.decode().then(() => [img.getAttribute('src'), img.naturalWidth, img.naturalHeight],
                                                       () => [img.getAttribute('src'), 0, 0]))).then(done);""")


@pytest.fixture(scope="module")
def learner_url(learner_site, serve):
    return serve(learner_site)


@pytest.mark.parametrize("page", PAGE_ORDER + ["search"])
def test_page_loads_without_console_errors(browser, learner_url, page):
    visit(browser, f"{learner_url}{page}.html")
    assert console_errors(browser) == []
    assert browser.execute_script("return DOCUMENTATION_OPTIONS.pagename") == page


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_chapter_figures_decode_and_formulas_render(browser, learner_url, chapter):
    visit(browser, f"{learner_url}{chapter}.html")
    notebook = reference(chapter)
    figures = sum(any(k.startswith("image/") for k in o.get("data", {}))
                  for c in notebook.cells if shows_outputs(c) for o in c.get("outputs", []))
    shown = decoded_figures(browser)
    assert len(shown) == figures
    assert all(width > 0 and height > 0 for _, width, height in shown), shown
    if any("$" in c.source for c in notebook.cells if c.cell_type == "markdown"):
        rendered = browser.execute_script("return [document.querySelectorAll('mjx-container').length,"
                                          " document.querySelectorAll('mjx-merror').length]")
        assert rendered[0] > 0 and rendered[1] == 0, f"MathJax typeset {rendered[0]} formulas, {rendered[1]} errors"
    assert console_errors(browser) == []
    if chapter == next(iter(CHAPTERS)):  # the screenshot: the chapter's first figure and its text
        browser.execute_script("document.querySelector('.cell_output img')?.scrollIntoView({block: 'center'})")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"{chapter}.png"))


def test_next_links_walk_through_the_chapters_in_order(browser, learner_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    visit(browser, f"{learner_url}index.html")
    walked = [browser.execute_script("return DOCUMENTATION_OPTIONS.pagename")]
    while links := browser.find_elements(By.CSS_SELECTOR, "a.right-next"):
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", links[0])
        links[0].click()
        WebDriverWait(browser, TIMEOUT).until(
            lambda d: d.execute_script("return DOCUMENTATION_OPTIONS.pagename") != walked[-1])
        settle(browser)
        walked.append(browser.execute_script("return DOCUMENTATION_OPTIONS.pagename"))
        assert console_errors(browser) == [], walked[-1]
    assert walked == PAGE_ORDER


def search(driver, base: str, term: str) -> list[str]:
    """The pages that the site's own search page lists for ``term``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    visit(driver, f"{base}search.html?q={term}")
    WebDriverWait(driver, TIMEOUT).until(lambda d: re.search(
        r"Search finished|did not match", d.find_element(By.CSS_SELECTOR, ".search-summary").text))
    assert console_errors(driver) == []
    links = driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")
    return sorted({link.get_attribute("href").removeprefix(base).split(".html")[0] for link in links})


def test_search_finds_the_chapter_that_teaches_it(browser, learner_url):
    term, chapter = SEARCH
    assert chapter in search(browser, learner_url, term)


def test_search_finds_solution_words_in_the_instructor_edition_only(browser, learner_url, instructor_site, serve):
    term = next(iter(secret_words()))
    assert search(browser, learner_url, term) == []
    assert search(browser, serve(instructor_site), term)
