"""Generate a job's example tables when they are missing, so a fresh clone just runs."""

from __future__ import annotations

from pathlib import Path

from fedspark.engine._config import JobConfig


def ensure_example_data(job: JobConfig) -> list[Path]:
    """Write the job's declared example tables if any of its local input files is missing."""
    if job.examples is None:
        return []
    paths = [Path(p.data.uri.removeprefix("file://")) for p in job.all_party_configs() if p.data is not None]
    missing = [p for p in paths if "://" not in str(p) and not p.exists()]
    if not missing:
        return []
    from fedspark.engine._examples import write_breast_examples

    written: list[Path] = []
    for folder in sorted({p.parent for p in missing}):
        written.extend(write_breast_examples(folder).values())
    return written
