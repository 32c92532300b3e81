"""One party's side of a standalone ``psi`` job: align its ids with every other party's.

The guest and each host read their own table, run :func:`fedspark.algorithms.psi.align`
and write only their own results: how many ids they hold and share, and their
aligned ids (with the agreed order key) as Parquet in their own run folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from fedspark.common import ConfigError, PartyRef, Role
from fedspark.engine._config import JobConfig
from fedspark.federation import Context

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class PsiParams(BaseModel):
    """``params`` of a psi job."""

    model_config = ConfigDict(extra="forbid")

    id_type: Literal["int", "string"] | None = None
    """How ids compare across parties; None: the id columns must hold the same kind."""


def run_psi(job: JobConfig, me: PartyRef, ctx: Context, out: Path, spark: SparkSession | None) -> dict[str, Any]:
    from fedspark.algorithms.psi import align
    from fedspark.storage import TableSpec, read_table

    params = PsiParams.model_validate(job.params)
    if me.role is Role.ARBITER or spark is None:
        raise ConfigError(f"job {job.name}: a psi job has no arbiter ({me})")
    cfg = job.party_config(me).data
    assert cfg is not None  # checked by JobConfig
    started = time.monotonic()
    table = read_table(spark, TableSpec(**cfg.model_dump()), party=str(me))
    load_seconds = time.monotonic() - started
    started = time.monotonic()
    result = align(ctx, table.dataframe.select("id"), "id", spark, id_type=params.id_type, keep_order_key=True)
    result.table.write.mode("overwrite").parquet(str(out / "aligned_ids.parquet"))
    seconds = time.monotonic() - started
    metrics: dict[str, Any] = {
        "role": me.role.value,
        "own_ids": result.own_ids,
        "matched": result.matched,
        "unmatched": result.unmatched,
        "peer_ids": result.peer_ids,
        "id_type": result.id_type.value,
        "seconds": seconds,
        "load_seconds": load_seconds,
    }
    lines = [f"# PSI {ctx.job_id}: {me}", "", f"- own ids: {result.own_ids}", f"- in the intersection: {result.matched}",
             f"- not matched: {result.unmatched}", *[f"- ids held by {p}: {n}" for p, n in result.peer_ids.items()],
             f"- aligned ids (sort by `{result.order_column}`): aligned_ids.parquet"]
    (out / "psi.md").write_text("\n".join(lines) + "\n")
    return metrics
