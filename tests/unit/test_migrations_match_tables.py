"""Each service's chain of revisions (services/<name>/migrations/) builds exactly the tables its code
declares, on SQLite and on PostgreSQL, and applies the steps that change the tables every service
has (shared/migrations/steps.py) once each, in their order."""

from __future__ import annotations

from functools import reduce
from itertools import combinations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from services.system import definitions
from shared.migrations import steps
from shared.platform.db import alembic_config, create_engine, migrate

SERVICES = definitions()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def make_url(request, tmp_path):
    if request.param == "sqlite":
        return lambda label: f"sqlite:///{tmp_path / label}.db"
    return request.getfixturevalue("new_database")


@pytest.mark.parametrize("definition", SERVICES, ids=lambda definition: definition.name)
def test_an_empty_database_upgraded_to_head_has_exactly_the_tables_of_the_code(definition, make_url):
    engine = create_engine(make_url(definition.name))
    try:
        migrate(engine, definition.migrations, definition.metadata)
        with engine.connect() as connection:
            # As shared/migrations/env.py compares: types too. UtcDateTime compiles to its
            # DateTime(timezone=True), which is what the revisions create.
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, definition.metadata)
    finally:
        engine.dispose()
    assert differences == []


def applied_steps(definition) -> list[steps.Step]:
    """The shared steps the service's revisions apply, from its first revision to its head."""
    scripts = ScriptDirectory.from_config(alembic_config(definition.migrations, definition.metadata))
    revisions = reversed(list(scripts.walk_revisions("base", "heads")))
    return [step for revision in revisions for step in getattr(revision.module, "shared_steps", ())]


@pytest.mark.parametrize("definition", SERVICES, ids=lambda definition: definition.name)
def test_every_chain_applies_every_shared_step_once_in_their_order(definition):
    applied = applied_steps(definition)
    assert sorted(applied, key=steps.SHARED_STEPS.index) == list(steps.SHARED_STEPS)
    # Where the order matters, two steps touching one table, it is the order of SHARED_STEPS. (Intake's
    # chain took steps that touch no common table in another order; see SHARED_STEPS.)
    for first, second in combinations(steps.SHARED_STEPS, 2):
        if set(first.tables) & set(second.tables):
            assert applied.index(first) < applied.index(second), f"{first} after {second}"


def test_status_and_disposition_apply_the_steps_in_the_order_they_were_made():
    for definition in SERVICES:
        if definition.name != "intake":
            assert applied_steps(definition) == list(steps.SHARED_STEPS), definition.name


def test_the_shared_steps_make_the_tables_every_service_has():
    everywhere = reduce(set.intersection, (set(definition.metadata.tables) for definition in SERVICES))
    assert {table for step in steps.SHARED_STEPS for table in step.tables} == everywhere
