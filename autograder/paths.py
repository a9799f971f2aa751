"""Where things are: the package, the project and the reference notebooks. Imports nothing."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PROJECT = PACKAGE.parent
SOLUTIONS = PROJECT / "solutions"
CHAPTER_FOLDERS = PACKAGE / "chapters"  # one folder per chapter: exercises, misconceptions, variants, graders
