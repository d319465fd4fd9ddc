"""The row spool gives back exactly what was appended, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from producers.spool import RowSpool


def test_frames_come_back_in_order_and_the_file_is_removed(tmp_path: Path) -> None:
    first = pl.DataFrame({"eventId": ["a", None], "rowNumber": [2, 3], "billable": [True, False]})
    second = pl.DataFrame({"eventId": ["c"], "rowNumber": [9], "billable": [None]})
    path = tmp_path / "spool" / "rows.arrow"
    with RowSpool(path) as spool:
        spool.append(first)
        spool.append(second)
        back = list(spool.frames())
        assert path.exists()
    assert [frame.to_dicts() for frame in back] == [first.to_dicts(), second.to_dicts()]
    assert not path.exists()


def test_an_empty_spool_reads_as_nothing(tmp_path: Path) -> None:
    with RowSpool(tmp_path / "never-written.arrow") as spool:
        assert list(spool.frames()) == []
