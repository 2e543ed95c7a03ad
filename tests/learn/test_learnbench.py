"""The learning bench runs and reports what it promises (figures are not asserted: shared VM)."""

from __future__ import annotations

from sonify.tools.learnbench import format_learn, run_learn_bench


def test_learn_bench_reports_every_algorithm_ratios_and_jitter() -> None:
    result = run_learn_bench(rounds=1, jitter_s=0.4)
    rows = {(r["kind"], r["algorithm"]): r for r in result["algorithms"]}
    assert set(rows) == {("regression", "knn"), ("regression", "mlp"), ("regression", "ridge"),
                         ("classification", "knn"), ("classification", "mlp"),
                         ("classification", "logistic")}
    for r in rows.values():
        assert r["train_ms_10"] > 0 and r["train_ms_50"] > 0 and r["predict_us"] > 0
        ratio = r["train_ms_50"] / result["analysis_ms"]
        assert abs(r["train_x_analysis_50"] - ratio) <= 0.01 + 0.01 * ratio
    jitter = result["jitter"]
    assert jitter["predictions_per_s"] > 0
    assert jitter["p99_ms_alone"] >= 0 and jitter["p99_ms_with_model"] >= 0
    assert jitter["p99_ms_model_each_frame"] >= 0
    text = format_learn(result)
    assert "regression     ridge" in text and "dispatch p99" in text
