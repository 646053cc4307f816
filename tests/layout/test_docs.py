"""The README is a front door and the docs state the product as it is; history is the
changelog's, dated measurements the results page's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).parents[2]
DOCS = REPOSITORY / "docs"
#: Pages that are history or dated measurements by design.
DATED = {DOCS / "results.md", DOCS / "changelog.md"}
HISTORY = re.compile(
    r"this morning|this session|before this change|today's run|used to (wait|be|take)", re.I
)


def test_the_readme_is_a_short_front_door() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    assert len(readme.encode()) <= 10 * 1024
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPOSITORY / link).is_file(), link


@pytest.mark.parametrize(
    "page",
    sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts and p not in DATED),
    ids=lambda p: str(p.relative_to(DOCS)),
)
def test_docs_state_the_product_as_it_is(page: Path) -> None:
    found = HISTORY.search(page.read_text())
    assert found is None, f"{page.name}: {found.group(0)!r} is history: the changelog's"


def test_every_role_s_variables_are_rendered_from_its_argument_specs() -> None:
    roles = sorted(
        p.parent.parent.name for p in REPOSITORY.glob("playbooks/roles/*/meta/argument_specs.yml")
    )
    page = (DOCS / "deploying" / "roles.md").read_text()
    assert roles and all(f"{{argument-specs}} playbooks/roles/{role}\n" in page for role in roles)
