"""One valid AppDirect row, as raw cells, for tests to vary one cell at a time."""

from __future__ import annotations

ACCOUNT = "123e4567-e89b-12d3-a456-426614174000"
DEVELOPER = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
VALID_CELLS: dict[str, str | None] = {
    "accountId": ACCOUNT,
    "developerId": DEVELOPER,
    "pricingUnit": "API_CALL",
    "customUnit": None,
    "quantity": "12.500",
    "unitPrice": "0.25",
    "description": "calls",
    "currency": "USD",
    "eventDate": "2026-07-16T19:20:30+01:00",
    "eventId": "evt-1",
    "billable": "true",
}
