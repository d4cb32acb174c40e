"""The preset seam: generic presets by name, a custom Preset's framing and
classifier applied by the transport, and the settings that choose them."""

from __future__ import annotations

import json

import pytest

import logdrain
from logdrain.presets import Answer, Preset, Verdict, status_verdict
from logdrain.testing import Collector

FAST = {"flush_interval": 0.02, "backoff_initial": 0.01, "backoff_max": 0.05}


def test_ndjson_preset_is_the_old_ndjson_format(collector: Collector) -> None:
    with logdrain.Drain(collector.url, preset="ndjson", **FAST) as drain:
        for i in range(3):
            drain.submit({"message": f"n {i}"})
        assert drain.flush(10)
    (request,) = collector.requests
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert request.body.endswith(b"\n") and request.body.count(b"\n") == 3
    assert drain.settings.format == "ndjson"


def test_object_preset_defaults_to_one_record_per_request(collector: Collector) -> None:
    with logdrain.Drain(collector.url, preset="object", **FAST) as drain:
        assert drain.settings.batch_size == 1
        for i in range(3):
            drain.submit({"message": f"o {i}"})
        assert drain.flush(10)
    assert sorted(json.loads(r.body)["message"] for r in collector.requests) == [
        "o 0",
        "o 1",
        "o 2",
    ]


def test_preset_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRAIN_PRESET", "NDJSON")
    drain = logdrain.Drain("http://127.0.0.1:9/x", capture_crashes=False)
    try:
        assert drain.settings.preset.name == "ndjson"
        assert "preset='ndjson'" in repr(drain.settings)
    finally:
        drain.close(0)


@pytest.mark.parametrize(
    ("options", "field", "fix"),
    [
        ({"preset": "ndjsn"}, "preset", "did you mean 'ndjson'?"),
        ({"preset": "xml"}, "preset", "use one of datadog, elasticsearch, gelf, json"),
        ({"preset": 3}, "preset", "give a name"),
        ({"preset": "ndjson", "format": "json"}, "format", "drop format="),
        ({"preset": "object", "batch_size": 5}, "batch_size", "set batch_size=1"),
    ],
)
def test_wrong_preset_settings_fail_at_construction(
    options: dict[str, object], field: str, fix: str
) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9/x", capture_crashes=False, **options)
    assert info.value.field == field
    assert fix in str(info.value)


def _picky_verdict(answer: Answer) -> Verdict:
    """A collector that answers 200 with {"ok": false} when it did not take the batch."""
    if 200 <= answer.status < 300 and answer.body:
        reply = json.loads(answer.body)
        if reply.get("ok") is False:
            if reply.get("retry"):
                return Verdict("retry", "collector busy", retry_after=0.01)
            return Verdict("rejected", str(reply.get("error")))
    return status_verdict(answer)


PICKY = Preset(
    "picky-lines",
    "application/x-ndjson; charset=utf-8",
    frame=b"\n".join,
    framed_size=lambda total, count: total + count,
    classify=_picky_verdict,
    defaults={"batch_size": 5},
)


def test_a_custom_preset_frames_and_judges(collector: Collector) -> None:
    """The transport applies the preset's verdict: a 200 that says "busy"
    is retried, a 200 that says "no" is rejected with the collector's reason,
    and the framing and content type are the preset's own."""
    collector.script(200, body=b'{"ok": false, "retry": true}')
    collector.script(200, body=b'{"ok": false, "error": "bad tenant"}')
    with logdrain.Drain(collector.url, preset=PICKY, concurrency=1, **FAST) as drain:
        assert drain.settings.batch_size == 5
        for i in range(10):
            drain.submit({"message": f"p {i}"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.retries) == (5, 5, 1)
    first = collector.requests[0]
    assert first.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert [json.loads(line)["message"] for line in first.body.split(b"\n")] == [
        f"p {i}" for i in range(5)
    ]


def test_a_custom_preset_refusal_names_the_collector_reason(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    collector.script(200, body=b'{"ok": false, "error": "bad tenant"}')
    with logdrain.Drain(collector.url, preset=PICKY, **FAST) as drain:
        drain.submit({"message": "x"})
        assert drain.flush(10)
    assert "bad tenant" in capsys.readouterr().err


def _tenant(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("the tenant must be a non-empty string")
    return raw.strip()


TENANTED = Preset(
    "tenanted",
    "application/json",
    frame=PICKY.frame,
    framed_size=PICKY.framed_size,
    path="/v1/push",
    options={"tenant": _tenant},
    headers=lambda options: {"X-Tenant": options.get("tenant", "default")},
    auth=lambda token: {"X-Api-Key": token},
)


def test_a_preset_option_path_headers_and_token_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset's options are plain keywords (or LOGDRAIN_<NAME>), its
    path completes a bare URL, its headers and token scheme are sent."""
    with Collector(path="/v1/push") as collector:
        bare = collector.url.removesuffix("/v1/push")
        with logdrain.Drain(bare, preset=TENANTED, token="tok-123", tenant="team-a") as drain:
            assert drain.settings.url == collector.url
            drain.submit({"message": "x"})
            assert drain.flush(10)
        monkeypatch.setenv("LOGDRAIN_TENANT", "team-b")
        with logdrain.Drain(bare + "/", preset=TENANTED, token="tok-123") as drain:
            drain.submit({"message": "y"})
            assert drain.flush(10)
        first, second = collector.requests
    assert first.headers["X-Tenant"] == "team-a" and second.headers["X-Tenant"] == "team-b"
    assert first.headers["X-Api-Key"] == "tok-123"
    assert "Authorization" not in first.headers


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"preset": TENANTED, "tennant": "a"}, "tennant", "did you mean 'tenant'?"),
        ({"preset": TENANTED, "tenant": " "}, "tenant", "non-empty string"),
        ({"tenant": "a"}, "tenant", "unknown setting (preset 'json')"),
    ],
)
def test_wrong_preset_options_fail_naming_the_preset(
    options: dict[str, object], field: str, says: str
) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9/x", capture_crashes=False, **options)
    assert info.value.field == field
    assert says in str(info.value)


def test_a_variable_for_an_option_the_preset_does_not_take_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRAIN_TENANT", "team-a")
    drain = logdrain.Drain("http://127.0.0.1:9/x", capture_crashes=False)
    try:
        assert drain.settings.options == {}
    finally:
        drain.close(0)


def test_enclosed_is_head_join_tail() -> None:
    """The framings' one-copy join makes what ``head + sep.join(parts) + tail`` makes."""
    from logdrain.presets.base import enclosed

    for parts in ([], [b"a"], [b"a", b""], [b"", b"b", b"c"], [b"%d" % i for i in range(50)]):
        for head, sep, tail in ((b"[", b",", b"]"), (b"", b"\n", b"\n"), (b'{"r":[', b",", b"]}")):
            assert enclosed(head, sep, parts, tail) == head + sep.join(parts) + tail
