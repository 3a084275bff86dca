"""Calibration: per-model correction of our token counts, from usage and from errors."""

from __future__ import annotations

from bot.prompt.calibration import Calibration, parse_context_error

OPENAI_ERROR = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages."
)


def test_the_openai_error_message_is_parsed() -> None:
    report = parse_context_error(OPENAI_ERROR)
    assert (report.window, report.prompt_tokens, report.completion_tokens) == (4096, 4000, 1000)


def test_an_unknown_message_gives_nothing() -> None:
    report = parse_context_error("prompt too long")
    assert (report.window, report.prompt_tokens, report.completion_tokens) == (None, None, None)


def test_an_unknown_model_keeps_the_configured_budget() -> None:
    assert Calibration().budget("m", 16_000, 1_000) == 15_000


def test_reported_usage_scales_the_budget_by_the_largest_recent_ratio() -> None:
    calibration = Calibration()
    calibration.observe("m", 100, 120)
    calibration.observe("m", 100, 150)
    calibration.observe("m", 100, 110)
    assert calibration.factor("m") == 1.5
    assert calibration.budget("m", 16_000, 1_000) == 10_000
    assert calibration.factor("other") == 1.0


def test_old_ratios_are_forgotten() -> None:
    calibration = Calibration()
    calibration.observe("m", 100, 200)
    for _ in range(20):
        calibration.observe("m", 100, 100)
    assert calibration.factor("m") == 1.0


def test_the_factor_is_clamped() -> None:
    calibration = Calibration()
    calibration.observe("m", 10, 1000)
    assert calibration.factor("m") == 4.0
    calibration.observe("n", 1000, 10)
    assert calibration.factor("n") == 0.8


def test_zero_counts_teach_nothing() -> None:
    calibration = Calibration()
    calibration.observe("m", 0, 100)
    calibration.observe("m", 100, 0)
    assert calibration.factor("m") == 1.0


def test_an_error_teaches_the_ratio_and_a_smaller_window() -> None:
    calibration = Calibration()
    calibration.learn_from_error("m", 3200, OPENAI_ERROR)
    assert calibration.factor("m") == 1.25
    assert calibration.window("m", 16_000) == 4096
    assert calibration.budget("m", 16_000, 1_000) == int((4096 - 1000) / 1.25)


def test_an_error_without_numbers_trims_by_a_quarter() -> None:
    calibration = Calibration()
    calibration.learn_from_error("m", 1000, "context_length_exceeded")
    assert calibration.factor("m") == 1.25
    calibration.learn_from_error("m", 1000, "context_length_exceeded")
    assert calibration.factor("m") == 1.563  # ceil(1000 × 1.25 × 1.25) / 1000
