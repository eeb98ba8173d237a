"""The state diagrams in docs/ are regenerated whenever a transition changes (STYLE.md)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("model", "filename"),
    [("cases.Dispute", "dispute_states.dot"), ("cases.Petition", "petition_states.dot")],
)
def test_committed_state_diagram_matches_the_model(model: str, filename: str) -> None:
    out = io.StringIO()
    call_command("graph_transitions", model, stdout=out)
    generated = sorted(out.getvalue().splitlines())
    committed = sorted((DOCS / filename).read_text(encoding="utf-8").splitlines())
    assert generated == committed, (
        f"docs/{filename} is stale: run `python manage.py graph_transitions {model} "
        f"> docs/{filename}`"
    )
