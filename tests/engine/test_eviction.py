"""Eviction policy as plain data."""

from streamer.engine.eviction import EvictionPolicy, Unit, UnitKind, plan_eviction

V, A, T = UnitKind.VISION, UnitKind.AUDIO, UnitKind.TEXT


def units(*spec):
    return [Unit(kind, n, pinned=pinned) for kind, n, pinned in spec]


def test_nothing_evicted_under_budget():
    us = units((T, 10, True), (V, 50, False))
    assert plan_eviction(us, 10, EvictionPolicy(100, 80, 20)) == [True, True]


def test_vision_before_audio_before_text_oldest_first_whole_units():
    us = units((T, 5, True), (T, 20, False), (A, 20, False), (V, 20, False), (V, 20, False), (T, 10, False))
    keep = plan_eviction(us, 10, EvictionPolicy(capacity=100, target=60, protect_recent=10))
    # 95 used + 10 incoming; goal 60: both frames go first (-40 → 55), audio and text stay.
    assert keep == [True, True, True, False, False, True]


def test_text_goes_last_and_pinned_and_recent_never():
    us = units((T, 5, True), (T, 30, False), (A, 30, False), (T, 30, False))
    keep = plan_eviction(us, 10, EvictionPolicy(capacity=100, target=40, protect_recent=30))
    assert keep == [True, False, False, True]


def test_out_of_room_is_a_return_value():
    us = units((T, 60, True), (T, 30, False))
    assert plan_eviction(us, 20, EvictionPolicy(capacity=100, target=80, protect_recent=30)) is None
