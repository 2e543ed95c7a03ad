"""The analysis thread count is a setting: [analysis] threads, AnalyzerConfig.threads and
`sonify features --threads`; more threads give exactly the same features."""

from __future__ import annotations

import pytest

from sonify.capture import open_source
from sonify.config import Config
from sonify.features.analyzer import Analyzer, AnalyzerConfig


def test_two_threads_give_the_features_one_does() -> None:
    one = Analyzer(AnalyzerConfig(width=0))
    two = Analyzer(AnalyzerConfig(width=0, threads=2))
    with open_source("demo:city", width=1280, height=720, seed=2) as src:
        for _, frame in zip(range(4), src, strict=False):
            a, b = one.analyze(frame), two.analyze(frame)
            assert a.raw == b.raw and a.values == b.values and a.mood == b.mood


def test_a_bad_thread_count_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="analysis threads must be a whole number >= 1"):
        Analyzer(AnalyzerConfig(threads=0))
    with pytest.raises(ValueError):
        Config.model_validate({"analysis": {"threads": 0}})
    assert Config().analysis.threads == 1
