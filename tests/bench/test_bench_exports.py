"""The entry points of fedspark.bench are pinned, and importing the package loads no benchmark."""

from __future__ import annotations

import subprocess
import sys

from fedspark import bench


def test_exported_names() -> None:
    assert sorted(bench.__all__) == [
        "parse_size",
        "run_arrow_bench",
        "run_federation_bench",
        "run_hetero_lr_bench",
        "run_hetero_lr_scale_bench",
        "run_homo_nn_bench",
        "run_paillier_bench",
        "run_psi_bench",
        "run_scoring_bench",
    ]
    for name in bench.__all__:
        assert callable(getattr(bench, name))


def test_importing_the_package_loads_no_benchmark() -> None:
    """The federation peer's peak RSS is a reported figure: it must not carry the other benchmarks."""
    code = "import sys, fedspark.bench; print(sorted(m for m in sys.modules if m.startswith('fedspark.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['fedspark.bench']"
