"""Tables printed for people keep every cell whole when piped into a log or a script."""

from __future__ import annotations

from pathlib import Path

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.processes import run_cli


def test_a_piped_table_shows_references_and_names_whole(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "usage-for-october-of-a-customer-with-a-rather-long-name.csv"
    write_sample_file(source, SampleSpec(rows=5))
    reference = "2026-10-a-reference-long-enough-to-be-cut-short-at-80-columns"
    published = run_cli(pipeline_env, "publish", "--reference", reference, str(source)).stdout
    listed = run_cli(pipeline_env, "uploads").stdout  # captured: not a terminal
    for table in (published, listed):
        assert reference in table
        assert source.name in table
        assert "…" not in table
