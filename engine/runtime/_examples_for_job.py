"""Generate a job's example tables when they are missing, so a fresh clone just runs."""

from __future__ import annotations

from pathlib import Path

from fedspark.engine.config._job import JobConfig


def ensure_example_data(job: JobConfig) -> list[Path]:
    """Write the job's declared example tables if any of its local input files is missing."""
    if job.examples is None:
        return []
    tables = [t for p in job.all_party_configs() for t in (p.data, p.test_data) if t is not None]
    paths = [Path(t.uri.removeprefix("file://")) for t in tables]
    missing = [p for p in paths if "://" not in str(p) and not p.exists()]
    if not missing:
        return []
    from fedspark.engine.runtime._examples import write_breast_examples, write_breast_homo_examples

    write = write_breast_homo_examples if job.examples == "breast_homo" else write_breast_examples
    written: list[Path] = []
    for folder in sorted({p.parent for p in missing}):
        written.extend(write(folder).values())
    return written
