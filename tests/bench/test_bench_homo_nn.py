"""``fedspark bench homo-nn`` at a tiny size: one JSON object of the agreed shape, real figures."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("torch")


def test_bench_json_shape(spark: Any) -> None:
    from fedspark.bench import run_homo_nn_bench

    result = json.loads(json.dumps(run_homo_nn_bench(clients=4, rounds=2, masked_rounds=1, paillier_rounds=1,
                                                     paillier_key_size=1024, spark=spark)))
    assert {"bench", "params", "results", "baseline", "ratio", "target", "meets_target"} <= result.keys()
    assert result["bench"] == "homo-nn" and result["params"]["clients"] == 4
    plain, masked = result["results"]["plaintext"], result["results"]["masked"]
    assert plain["unit"] == masked["unit"] == "rounds/s" and plain["rate"] > 0 and masked["rate"] > 0
    assert len(plain["round_s"]) == 2 and len(masked["round_s"]) == 1
    assert result["ratio"] == pytest.approx(plain["later_round_s"] / (1 / masked["rate"]))
    assert isinstance(result["meets_target"], bool)
    big, sealed = result["results"]["plaintext_10k"], result["results"]["packed_paillier_10k"]
    assert big["parameters"] == 30 * 320 + 320 + 320 + 1 and len(big["round_s"]) == len(sealed["round_s"]) == 1
    assert result["paillier_ratio"] == pytest.approx(big["round_s"][0] / sealed["round_s"][0])
