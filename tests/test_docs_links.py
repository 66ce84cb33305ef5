"""Every link in the README and docs/ leads somewhere: the file exists and, for `#anchor` links, a heading
of that file has that anchor (GitHub's slug: lower case, punctuation dropped, spaces to hyphens). Eight
in-page links died silently once when the studies moved from bench/ to studies/ (issue 38)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # no headings in code
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def test_the_slug_is_githubs():
    assert slug("Model Tailor on tiny (`studies/tailor_quality.py`)") == "model-tailor-on-tiny-studiestailor_qualitypy"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_resolves(doc):
    text = doc.read_text(encoding="utf-8")
    dead = []
    for m in re.finditer(r"\]\(([^)\s]*)\)", text):
        target = m.group(1)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            dead.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            dead.append(target)
    assert not dead, f"{doc.name}: dead links {dead}"
