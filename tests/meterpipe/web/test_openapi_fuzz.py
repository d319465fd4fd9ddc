"""Schemathesis against /openapi.json of a real `meterpipe up`, for a bounded number of cases.

Every operation gets generated requests (valid and invalid); no answer may be a 5xx, and
every answer must be documented: its status code, content type and body schema.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.meterpipe.web.conftest import Server
from tests.processes import run_cli

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_answers_as_documented(server: Server) -> None:
    created = run_cli(server.env, "keys", "create", "--name", "fuzz", "--scope", "admin", "--json")
    auth = {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def answers_as_documented(case: Case[Any]) -> None:
            case.call_and_validate(base_url=server.url, headers=auth, checks=CHECKS)

        answers_as_documented()
