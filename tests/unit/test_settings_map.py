"""Settings → session.update (PROTOCOL.md §4) and context/greeting/History (§5.1–§5.3).

Scenario tests are named after their PROTOCOL id and compare the ``session`` object exactly
(parsed JSON, J2) with the document's expected value.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_examples import (
    DEFAULT_SESSION,
    P19_SESSION,
    P19_SETTINGS,
    P20_NEVER_SENT,
    P21_IGNORED_PATHS,
    P21_SETTINGS,
    P22_CASES,
    P23_SETTINGS,
    P24_IDLE_TIMEOUTS,
    P25_TRANSCRIPTION,
    P26_SETTINGS,
    P85_SETTINGS,
    P86_SETTINGS,
    PCM24,
    SEMANTIC_VAD,
    SERVER_VAD,
    p20_settings,
)

from fastproxy import settings_schema
from fastproxy.protocol.actions import AudioFormat
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.settings_map import (
    MappedSettings,
    UnsupportedAudioFormat,
    map_settings,
    speak_voice,
    trim,
)

DEFAULTS = SessionOptions()
# §4.7: the session of {"type":"Settings"} with default settings.
MINIMAL_SESSION = DEFAULT_SESSION
# P-19's Settings as JSON text, as a client sends it (also decoded to a Settings Struct below)
P19_SETTINGS_JSON = json.dumps(P19_SETTINGS)
SUPPORTED_WORDS = ("linear16", "mulaw", "alaw", *map(str, (8000, 16000, 22050, 24000)))
SUPPORTED_WORDS += ("32000", "44100", "48000")


def mapped(settings: Any, **options: Any) -> MappedSettings:
    if isinstance(settings, str):
        settings = json.loads(settings)
    return map_settings(settings, SessionOptions(**options))


def with_think(fragment: Any) -> dict[str, Any]:
    return {"type": "Settings", "agent": {"think": fragment}}


def noted_paths(result: MappedSettings) -> list[str]:
    return [note.split(": ", 1)[0] for note in result.notes]


# --- §13.3 Settings -------------------------------------------------------------------------


def test_p18_minimal_settings() -> None:
    result = mapped({"type": "Settings"})
    assert result.session == MINIMAL_SESSION
    assert result.notes == ()
    assert result.input_format == result.output_format == AudioFormat("linear16", 24000)
    assert result.context_items == ()
    assert result.greeting is None
    assert result.history is True
    assert result.instructions == ""
    assert result.output_audio == {"format": PCM24}


def test_p19_full_field_map() -> None:
    result = mapped(P19_SETTINGS_JSON)
    assert result.session == P19_SESSION
    assert result.notes == ()  # no Warning
    assert result.input_format == AudioFormat("linear16", 16000)
    assert result.output_format == AudioFormat("linear16", 24000)
    assert result.instructions == "Be brief."
    assert result.output_audio == P19_SESSION["audio"]["output"]


def test_p20_never_sent_fields() -> None:
    settings = p20_settings()
    result = mapped(settings)
    assert result.session == P19_SESSION
    assert result.notes == ()
    encoded = msgspec.json.encode(result.session)
    for word in P20_NEVER_SENT:
        assert word.encode() not in encoded


def test_p21_wrongly_typed_fields() -> None:
    result = mapped(P21_SETTINGS)
    assert noted_paths(result) == list(P21_IGNORED_PATHS)
    assert "agent.think.prompt: expected a string" in result.notes
    assert result.session == MINIMAL_SESSION  # "instructions":"", no tools, no tool_choice
    assert result.greeting is None


@pytest.mark.parametrize(("fragment", "key", "expected"), P22_CASES)
def test_p22_value_normalisation(fragment: dict[str, Any], key: str, expected: Any) -> None:
    result = mapped(with_think(fragment))
    if expected is None:  # dropped: absent, and exactly one note naming the field
        assert key not in result.session
        assert len(result.notes) == 1
        assert result.notes[0].startswith("agent.think." + next(iter(fragment)))
    else:
        assert result.session[key] == expected
        assert result.notes == ()
    assert {k: v for k, v in result.session.items() if k != key} == MINIMAL_SESSION


def test_p23_turn_detection_modes() -> None:
    semantic = mapped(P23_SETTINGS, turn_detection="semantic_vad")
    assert semantic.session["audio"]["input"]["turn_detection"] == SEMANTIC_VAD
    manual = mapped(P23_SETTINGS, turn_detection="manual")
    assert "turn_detection" in manual.session["audio"]["input"]
    assert manual.session["audio"]["input"]["turn_detection"] is None
    assert b'"turn_detection":null' in msgspec.json.encode(manual.session)
    assert semantic.notes == manual.notes == ()


@pytest.mark.parametrize(
    ("value", "expected", "noted"),
    [
        *((value, expected, False) for value, expected in P24_IDLE_TIMEOUTS),
        (msgspec.UNSET, None, False),
        ("10s", None, True),
    ],
)
def test_p24_idle_timeout(value: Any, expected: int | None, noted: bool) -> None:
    agent = {} if value is msgspec.UNSET else {"idleTimeoutMs": value}
    result = mapped({"type": "Settings", "agent": agent})
    detection = result.session["audio"]["input"]["turn_detection"]
    if expected is None:
        assert detection == SERVER_VAD
    else:
        assert detection == {**SERVER_VAD, "idle_timeout_ms": expected}
        assert type(detection["idle_timeout_ms"]) is int
    assert noted_paths(result) == (["agent.idleTimeoutMs"] if noted else [])


def test_p25_transcription_settings() -> None:
    result = mapped(
        {"type": "Settings"},
        transcription_model="gpt-4o-mini-transcribe",
        transcription_language="fr",
    )
    assert result.session["audio"]["input"]["transcription"] == P25_TRANSCRIPTION


def test_p26_think_and_speak_as_lists() -> None:
    result = mapped(P26_SETTINGS)
    assert result.session["model"] == "m1"
    assert result.session["instructions"] == "A"
    assert result.session["audio"]["output"]["voice"] == "marin"
    assert result.notes == ()


# --- §13.4 audio formats --------------------------------------------------------------------

PCMU = {"type": "audio/pcmu"}
PCMA = {"type": "audio/pcma"}


@pytest.mark.parametrize(
    ("audio", "upstream", "client_in", "client_out"),
    [
        pytest.param(
            {
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "linear16", "sample_rate": 8000},
            },
            (PCM24, PCM24),
            AudioFormat("linear16", 16000),
            AudioFormat("linear16", 8000),
            id="a",
        ),
        pytest.param(
            {
                "input": {"encoding": "mulaw", "sample_rate": 8000},
                "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
            },
            (PCMU, PCMU),
            AudioFormat("mulaw", 8000),
            AudioFormat("mulaw", 8000),
            id="b",
        ),
        pytest.param(
            {"input": {"encoding": "alaw"}, "output": {"encoding": "alaw"}},
            (PCMA, PCMA),
            AudioFormat("alaw", 8000),
            AudioFormat("alaw", 8000),
            id="c",
        ),
        pytest.param(
            msgspec.UNSET,
            (PCM24, PCM24),
            AudioFormat("linear16", 24000),
            AudioFormat("linear16", 24000),
            id="d",
        ),
        pytest.param(
            {"output": {"sample_rate": 16000}},
            (PCM24, PCM24),
            AudioFormat("linear16", 24000),
            AudioFormat("linear16", 16000),
            id="e",
        ),
    ],
)
def test_p34_format_negotiation(
    audio: Any,
    upstream: tuple[dict[str, Any], dict[str, Any]],
    client_in: AudioFormat,
    client_out: AudioFormat,
) -> None:
    settings: dict[str, Any] = {"type": "Settings"}
    if audio is not msgspec.UNSET:
        settings["audio"] = audio
    result = mapped(settings)
    assert result.session["audio"]["input"]["format"] == upstream[0]
    assert result.session["audio"]["output"]["format"] == upstream[1]
    assert (result.input_format, result.output_format) == (client_in, client_out)
    assert result.output_audio == {"format": upstream[1]}
    assert result.notes == ()


@pytest.mark.parametrize(
    ("audio", "direction", "offending"),
    [
        ({"input": {"encoding": "opus", "sample_rate": 48000}}, "audio.input", '"opus"'),
        ({"input": {"encoding": "linear16", "sample_rate": 11025}}, "audio.input", "11025"),
        ({"input": {"encoding": "mulaw", "sample_rate": 16000}}, "audio.input", "16000"),
        ({"output": {"encoding": "mp3"}}, "audio.output", '"mp3"'),
        (
            {"output": {"encoding": "linear16", "sample_rate": 24000, "container": "wav"}},
            "audio.output",
            '"wav"',
        ),
    ],
)
def test_p35_unsupported_formats(audio: dict[str, Any], direction: str, offending: str) -> None:
    with pytest.raises(UnsupportedAudioFormat) as raised:
        mapped({"type": "Settings", "audio": audio})
    description = raised.value.description
    assert str(raised.value) == description
    assert direction in description
    assert offending in description
    other = "audio.output" if direction == "audio.input" else "audio.input"
    assert other not in description
    for word in SUPPORTED_WORDS:
        assert word in description


# --- §13.8 context, greeting and History ----------------------------------------------------


def test_p85_context_items() -> None:
    result = mapped(P85_SETTINGS)
    assert result.context_items == (
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi there!"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
    )
    assert result.notes == ()
    assert result.session == {**MINIMAL_SESSION, "instructions": "Help."}


def test_p86_context_with_function_calls() -> None:
    result = mapped(P86_SETTINGS)
    assert result.context_items == (
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Time?"}]},
        {"type": "function_call", "call_id": "call_9", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_9", "output": '{"time":"09:00"}'},
    )
    assert result.notes == ()


def test_p88_blank_greeting() -> None:
    blank = mapped({"type": "Settings", "agent": {"greeting": "   "}})
    assert blank.greeting is None
    assert blank.notes == ()


def test_p88_greeting_off() -> None:
    off = mapped({"type": "Settings", "agent": {"greeting": "Hi"}}, greeting="off")
    assert off.greeting is None
    assert off.notes == ()
    assert mapped({"type": "Settings", "agent": {"greeting": "Hi"}}).greeting == "Hi"


def test_p89_greeting_suppressed_by_context() -> None:
    agent = {
        "greeting": "Welcome back!",
        "context": {"messages": [{"type": "History", "role": "user", "content": "Hello"}]},
    }
    result = mapped({"type": "Settings", "agent": agent})
    assert result.greeting is None
    assert len(result.context_items) == 1
    assert result.notes == ()


def test_p91_history_flag() -> None:
    assert mapped({"type": "Settings", "flags": {"history": False}}).history is False
    assert mapped({"type": "Settings", "flags": {"history": True}}).history is True
    assert mapped({"type": "Settings", "flags": {}}).history is True
    junk = mapped({"type": "Settings", "flags": {"history": 0}})
    assert junk.history is True
    assert noted_paths(junk) == ["flags.history"]


# --- edge cases -----------------------------------------------------------------------------


def test_greeting_kept_untrimmed_and_context_must_be_non_empty_to_suppress() -> None:
    result = mapped(
        {"type": "Settings", "agent": {"greeting": " Hi ", "context": {"messages": []}}}
    )
    assert result.greeting == " Hi "
    spoken = mapped({"type": "Settings", "agent": {"greeting": "Hi"}}, greeting="spoken")
    assert spoken.greeting == "Hi"


def test_greeting_suppressed_even_when_every_context_entry_is_invalid() -> None:
    agent = {"greeting": "Hi", "context": {"messages": [{"content": 5}]}}
    result = mapped({"type": "Settings", "agent": agent})
    assert result.greeting is None
    assert result.context_items == ()
    assert noted_paths(result) == ["agent.context.messages[0].content"]


@pytest.mark.parametrize(
    ("think", "key"),
    [
        ({"maxOutputTokens": True}, "max_output_tokens"),
        ({"maxOutputTokens": False}, "max_output_tokens"),
        ({"outputModalities": True}, "output_modalities"),
        ({"prompt": True}, "instructions"),
        ({"toolChoice": True}, "tool_choice"),
    ],
)
def test_bools_are_not_numbers_or_strings(think: dict[str, Any], key: str) -> None:
    result = mapped(with_think(think))
    assert result.session == MINIMAL_SESSION
    assert len(result.notes) == 1


def test_bools_are_not_numbers_elsewhere() -> None:
    agent = {"idleTimeoutMs": True, "sessionAudioOutput": {"speed": True}}
    result = mapped({"type": "Settings", "agent": agent})
    assert result.session == MINIMAL_SESSION
    assert noted_paths(result) == ["agent.idleTimeoutMs", "agent.sessionAudioOutput.speed"]
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": {"input": {"sample_rate": True}}})


def test_integral_floats_count_as_integers() -> None:
    audio = {"input": {"sample_rate": 16000.0}, "output": {"encoding": "mulaw", "sample_rate": 8e3}}
    result = mapped(
        {"type": "Settings", "audio": audio, "agent": {"think": {"maxOutputTokens": 256.0}}}
    )
    assert result.input_format == AudioFormat("linear16", 16000)
    assert type(result.input_format.rate) is int
    assert result.output_format == AudioFormat("mulaw", 8000)
    assert result.session["max_output_tokens"] == 256
    assert type(result.session["max_output_tokens"]) is int
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": {"input": {"sample_rate": 16000.5}}})


@pytest.mark.parametrize(
    ("huge", "idle", "idle_noted"),
    [
        pytest.param(math.inf, None, True, id="inf"),
        pytest.param(-math.inf, None, False, id="-inf"),
        pytest.param(math.nan, None, True, id="nan"),
        pytest.param(10**400, 30000, False, id="10**400"),
        pytest.param(-(10**400), None, False, id="-10**400"),
        pytest.param(1e308, 30000, False, id="1e308"),
    ],
)
def test_huge_numbers(huge: Any, idle: int | None, idle_noted: bool) -> None:
    agent = {
        "idleTimeoutMs": huge,
        "sessionAudioOutput": {"speed": huge},
        "think": {"maxOutputTokens": huge},
    }
    result = mapped({"type": "Settings", "agent": agent})
    assert "max_output_tokens" not in result.session
    assert "speed" not in result.session["audio"]["output"]
    detection = result.session["audio"]["input"]["turn_detection"]
    assert detection == (SERVER_VAD if idle is None else {**SERVER_VAD, "idle_timeout_ms": idle})
    expected = ["agent.think.maxOutputTokens"]
    expected += ["agent.idleTimeoutMs"] if idle_noted else []
    expected += ["agent.sessionAudioOutput.speed"]
    assert noted_paths(result) == expected
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": {"output": {"sample_rate": huge}}})


def test_idle_timeout_rounds_halves_up_and_clamps() -> None:
    def idle(value: Any) -> Any:
        agent = {"idleTimeoutMs": value}
        return (
            mapped({"type": "Settings", "agent": agent})
            .session["audio"]["input"]["turn_detection"]
            .get("idle_timeout_ms")
        )

    assert idle(5000.5) == 5001
    assert idle(5000.4999) == 5000
    assert idle(29999.5) == 30000
    assert idle(0) == 5000
    assert idle(-0.0) == 5000
    assert idle(-0.5) is None
    assert idle(None) is None  # null is not a number: noted


def test_idle_timeout_only_in_server_vad() -> None:
    for mode in ("semantic_vad", "manual"):
        result = mapped(
            {"type": "Settings", "agent": {"idleTimeoutMs": 10000}}, turn_detection=mode
        )
        assert "idle_timeout_ms" not in msgspec.json.encode(result.session).decode()


def test_deep_junk_everywhere() -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [{"a": deep}]
    settings = {
        "type": "Settings",
        "agent": {
            "think": {"provider": deep, "functions": deep, "managedPrompt": deep, "prompt": deep},
            "speak": deep,
            "context": {"messages": deep},
            "greeting": deep,
            "sessionAudioOutput": {"voice": deep, "speed": deep},
            "idleTimeoutMs": deep,
        },
        "flags": deep,
    }
    result = mapped(settings)
    assert result.session == MINIMAL_SESSION
    assert result.context_items == ()
    assert noted_paths(result) == [
        "agent.think.provider",
        "agent.think.prompt",
        "agent.think.functions[0]",
        "agent.think.managedPrompt",
        "agent.idleTimeoutMs",
        "agent.sessionAudioOutput.voice",
        "agent.sessionAudioOutput.speed",
        # agent.speak[0] is an object without a provider: nothing to note
        "agent.context.messages[0].content",
        "agent.greeting",
        "flags",
    ]
    with pytest.raises(UnsupportedAudioFormat) as raised:
        mapped({"type": "Settings", "audio": {"input": deep}})
    assert len(raised.value.description) < 1000


@pytest.mark.parametrize("junk", [[], [1, "a"], "agent", 5, None, True])
def test_non_object_agent_is_noted(junk: Any) -> None:
    result = mapped({"type": "Settings", "agent": junk})
    assert result.session == MINIMAL_SESSION
    assert noted_paths(result) == ["agent"]


@pytest.mark.parametrize("junk", [[], [1, "a"], "think", 5, None])
def test_think_without_an_object(junk: Any) -> None:
    result = mapped(with_think(junk))
    assert result.session == MINIMAL_SESSION
    assert noted_paths(result) == ["agent.think"]


def test_think_array_uses_first_object_and_reports_its_index() -> None:
    result = mapped(
        with_think([5, "x", {"prompt": 7, "provider": {"model": "m"}}, {"prompt": "B"}])
    )
    assert result.session["model"] == "m"
    assert result.session["instructions"] == ""
    assert noted_paths(result) == ["agent.think[2].prompt"]


@pytest.mark.parametrize("audio", [5, "linear16", [], None])
def test_non_object_audio_is_unsupported(audio: Any) -> None:
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": audio})
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": {"input": audio}})
    with pytest.raises(UnsupportedAudioFormat):
        mapped({"type": "Settings", "audio": {"output": audio}})


@pytest.mark.parametrize(
    "direction",
    [
        {"encoding": None},
        {"sample_rate": None},
        {"encoding": "LINEAR16"},
        {"sample_rate": "16000"},
        {"encoding": ["linear16"]},
        {"encoding": "alaw", "sample_rate": 24000},
    ],
)
def test_null_and_odd_audio_values_are_unsupported(direction: dict[str, Any]) -> None:
    for key in ("input", "output"):
        with pytest.raises(UnsupportedAudioFormat):
            mapped({"type": "Settings", "audio": {key: direction}})


def test_input_container_and_bitrate_are_ignored() -> None:
    audio = {"input": {"container": "wav", "bitrate": 1}, "output": {"bitrate": 48000}}
    result = mapped({"type": "Settings", "audio": audio})
    assert result.session == MINIMAL_SESSION


def test_both_directions_unsupported_are_both_named() -> None:
    audio = {"input": {"encoding": "opus"}, "output": {"encoding": "mp3"}}
    with pytest.raises(UnsupportedAudioFormat) as raised:
        mapped({"type": "Settings", "audio": audio})
    assert "audio.input" in raised.value.description
    assert "audio.output" in raised.value.description


def test_unicode_whitespace_trimming() -> None:
    ws = "\u3000\u00a0\u2003\u2028\t\n\u205f"
    think = {
        "provider": {"model": f"{ws}m{ws}"},
        "managedPrompt": {"id": f"{ws}p{ws}", "version": f"{ws}2{ws}"},
    }
    agent = {
        "think": think,
        "speak": {"provider": {"voice": f"{ws}marin{ws}"}},
        "greeting": ws,
    }
    result = mapped({"type": "Settings", "agent": agent})
    assert result.session["model"] == "m"
    assert result.session["prompt"] == {"id": "p", "version": "2"}
    assert result.session["audio"]["output"]["voice"] == "marin"
    assert result.greeting is None
    assert result.notes == ()
    # U+001C..U+001F are str.isspace() but not Unicode White_Space; U+200B is neither.
    assert trim("\x1cx\u200b") == "\x1cx\u200b"
    blank_model = mapped(with_think({"provider": {"model": ws}}))
    assert blank_model.session["model"] == "gpt-realtime"
    assert noted_paths(blank_model) == ["agent.think.provider.model"]


def test_tools_entries() -> None:
    functions = [
        {"name": "a", "description": 5, "parameters": [1]},
        {"name": " "},
        "b",
        {"name": " c ", "description": "", "parameters": {"type": "object"}},
    ]
    result = mapped(with_think({"functions": functions}))
    assert result.session["tools"] == [
        {"type": "function", "name": "a", "parameters": {}},
        {"type": "function", "name": " c ", "description": "", "parameters": {"type": "object"}},
    ]
    assert noted_paths(result) == [
        "agent.think.functions[0].description",
        "agent.think.functions[0].parameters",
        "agent.think.functions[1]",
        "agent.think.functions[2]",
    ]
    assert "tools" not in mapped(with_think({"functions": []})).session
    assert mapped(with_think({"functions": []})).notes == ()
    not_array = mapped(with_think({"functions": {"name": "x"}}))
    assert "tools" not in not_array.session
    assert noted_paths(not_array) == ["agent.think.functions"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "f", "extra": 1}, {"type": "function", "name": "f"}),
        ({"type": "function", "name": " "}, None),
        ({"type": "function"}, None),
        ({"name": "f"}, None),
        ("AUTO", None),
        (None, None),
    ],
)
def test_tool_choice_values(choice: Any, expected: Any) -> None:
    result = mapped(with_think({"toolChoice": choice}))
    assert result.session.get("tool_choice") == expected
    assert len(result.notes) == (1 if expected is None else 0)


@pytest.mark.parametrize(
    ("modalities", "expected"),
    [(["audio", "text"], ["audio"]), ([], None), ("audio", None), ([["audio"]], None)],
)
def test_output_modalities_values(modalities: Any, expected: Any) -> None:
    result = mapped(with_think({"outputModalities": modalities}))
    assert result.session.get("output_modalities") == expected
    assert len(result.notes) == (1 if expected is None else 0)


@pytest.mark.parametrize(
    ("tokens", "expected"), [(1, 1), (4096, 4096), (4097, None), ("INF", None), ("256", None)]
)
def test_max_output_tokens_values(tokens: Any, expected: Any) -> None:
    result = mapped(with_think({"maxOutputTokens": tokens}))
    assert result.session.get("max_output_tokens") == expected
    assert len(result.notes) == (1 if expected is None else 0)


def test_managed_prompt_parts() -> None:
    result = mapped(with_think({"managedPrompt": {"id": "p", "version": 3, "variables": []}}))
    assert result.session["prompt"] == {"id": "p"}
    assert noted_paths(result) == [
        "agent.think.managedPrompt.version",
        "agent.think.managedPrompt.variables",
    ]
    assert "prompt" not in mapped(with_think({"managedPrompt": "p"})).session
    assert mapped(with_think({"managedPrompt": {"id": "p", "version": "  "}})).notes == ()


def test_session_audio_output_voice() -> None:
    def output(agent: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        result = mapped({"type": "Settings", "agent": agent})
        assert result.output_audio == result.session["audio"]["output"]
        return result.session["audio"]["output"], noted_paths(result)

    speak = {"provider": {"voice": "alloy"}}
    assert output({"sessionAudioOutput": {"voice": " marin "}, "speak": speak}) == (
        {"format": PCM24, "voice": "marin"},
        [],
    )
    assert output({"sessionAudioOutput": {"voice": {"id": " v_1 ", "x": 1}}}) == (
        {"format": PCM24, "voice": {"id": "v_1"}},
        [],
    )
    # An invalid extension voice is treated as absent: the speak voice applies.
    assert output({"sessionAudioOutput": {"voice": {"id": ""}}, "speak": speak}) == (
        {"format": PCM24, "voice": "alloy"},
        ["agent.sessionAudioOutput.voice"],
    )
    # The speak voice must be a string (the {"id":...} form is the extension's only).
    assert output({"speak": {"provider": {"voice": {"id": "v"}}}}) == (
        {"format": PCM24},
        ["agent.speak.provider.voice"],
    )
    assert output({"sessionAudioOutput": {"speed": 0.25}}) == ({"format": PCM24, "speed": 0.25}, [])
    assert output({"sessionAudioOutput": {"speed": 1}}) == ({"format": PCM24, "speed": 1}, [])
    assert output({"sessionAudioOutput": {"speed": 1.51}}) == (
        {"format": PCM24},
        ["agent.sessionAudioOutput.speed"],
    )
    assert output({"sessionAudioOutput": "fast"}) == (
        {"format": PCM24},
        ["agent.sessionAudioOutput"],
    )


def test_output_audio_is_a_copy() -> None:
    result = mapped({"type": "Settings", "agent": {"speak": {"provider": {"voice": "alloy"}}}})
    result.output_audio["voice"] = "cedar"
    result.output_audio["format"]["rate"] = 1
    assert result.session["audio"]["output"] == {"format": PCM24, "voice": "alloy"}


def test_speak_voice_for_update_speak() -> None:
    assert speak_voice({"provider": {"voice": " marin "}}) == "marin"
    assert (
        speak_voice([5, {"provider": {"voice": "cedar"}}, {"provider": {"voice": "x"}}]) == "cedar"
    )
    assert speak_voice([{"provider": {}}, {"provider": {"voice": "x"}}]) is None
    junks: list[Any] = [None, 5, "marin", [], {}, {"provider": "marin"}]
    for junk in [*junks, {"provider": {"voice": "  "}}]:
        assert speak_voice(junk) is None
    assert speak_voice(settings_schema.Speak(provider={"voice": "ash"})) == "ash"


def test_context_message_roles_and_bad_entries() -> None:
    messages = [
        {"content": "no role"},
        {"role": ["assistant"], "content": "list role"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": None},
        "text",
        {"role": "user"},
    ]
    result = mapped({"type": "Settings", "agent": {"context": {"messages": messages}}})
    assert [(i["role"], i["content"][0]) for i in result.context_items] == [
        ("user", {"type": "input_text", "text": "no role"}),
        ("user", {"type": "input_text", "text": "list role"}),
        ("assistant", {"type": "output_text", "text": ""}),
    ]
    assert noted_paths(result) == [
        "agent.context.messages[3].content",
        "agent.context.messages[4]",
        "agent.context.messages[5].content",
    ]


def test_context_function_call_encoding_and_bad_calls() -> None:
    calls = [
        {"id": "c1", "name": "f", "arguments": {"a": [1, 2.5]}, "response": {"ok": True}},
        {"id": "c2", "name": "g"},
        {"id": "c3", "name": "h", "arguments": None, "response": 7},
        {"id": " ", "name": "x"},
        {"id": "c5", "name": 5},
        "call",
    ]
    messages = [{"type": "History", "function_calls": calls}, {"function_calls": "x"}]
    result = mapped({"type": "Settings", "agent": {"context": {"messages": messages}}})
    assert result.context_items == (
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":[1,2.5]}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"ok":true}'},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": ""},
        {"type": "function_call", "call_id": "c3", "name": "h", "arguments": "null"},
        {"type": "function_call_output", "call_id": "c3", "output": "7"},
    )
    assert noted_paths(result) == [
        "agent.context.messages[0].function_calls[3]",
        "agent.context.messages[0].function_calls[4]",
        "agent.context.messages[0].function_calls[5]",
        "agent.context.messages[1].function_calls",
    ]


def test_values_that_are_not_json_do_not_crash() -> None:
    calls = [{"id": "c", "name": "f", "arguments": {1j}}]
    agent = {"context": {"messages": [{"function_calls": calls}]}}
    result = mapped({"type": "Settings", "agent": agent})
    assert result.context_items == ()
    assert noted_paths(result) == ["agent.context.messages[0].function_calls[0]"]
    with pytest.raises(UnsupportedAudioFormat) as raised:
        mapped({"type": "Settings", "audio": {"input": {"encoding": {1j}}}})
    assert "{1j}" in raised.value.description


@pytest.mark.parametrize("context", [5, [], {"messages": {"a": 1}}, {"messages": None}])
def test_bad_context_shapes_are_noted(context: Any) -> None:
    result = mapped({"type": "Settings", "agent": {"greeting": "Hi", "context": context}})
    assert result.context_items == ()
    assert result.greeting == "Hi"
    assert len(result.notes) == 1
    assert result.notes[0].startswith("agent.context")


def test_null_is_not_absent() -> None:
    think = {"prompt": None, "provider": None, "functions": None, "managedPrompt": None}
    agent = {"think": think, "greeting": None, "idleTimeoutMs": None}
    result = mapped({"type": "Settings", "agent": agent, "flags": None})
    assert result.session == MINIMAL_SESSION
    assert noted_paths(result) == [
        "agent.think.provider",
        "agent.think.prompt",
        "agent.think.functions",
        "agent.think.managedPrompt",
        "agent.idleTimeoutMs",
        "agent.greeting",
        "flags",
    ]


def test_accepts_a_decoded_settings_struct() -> None:
    decoded = msgspec.json.decode(P19_SETTINGS_JSON.encode(), type=settings_schema.Settings)
    assert map_settings(decoded, DEFAULTS).session == P19_SESSION
    union = msgspec.json.Decoder(settings_schema.Settings | _Other)
    assert isinstance(union.decode(b'{"type":"Settings","agent":5}'), settings_schema.Settings)


class _Other(msgspec.Struct, tag_field="type", tag="KeepAlive"):
    pass


@pytest.mark.parametrize("settings", [None, 5, "Settings", [], {"type": 5}, {1: 2}])
def test_non_object_settings_map_to_defaults(settings: Any) -> None:
    assert map_settings(settings, DEFAULTS).session == MINIMAL_SESSION


# --- property test --------------------------------------------------------------------------

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([10**400, -(10**400), 0, -1, 1, 8000, 16000, 24000, 0.25, 1.5, 16000.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", " ", "\u3000", "auto", "audio", "text", "inf", "linear16", "mulaw"])
    | st.text(max_size=8)
)
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


_DROP = object()


def _pick(*weighted: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen with the given integer weights."""
    choices = [strategy for weight, strategy in weighted for _ in range(weight)]
    return st.integers(0, len(choices) - 1).flatmap(lambda n: choices[n])


def _shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Mostly objects with the schema's keys (so deep code runs), sometimes junk."""
    values = {
        key: _pick((7, value), (1, _json), (2, st.just(_DROP))) for key, value in fields.items()
    }
    shaped = st.fixed_dictionaries(values).map(
        lambda d: {key: value for key, value in d.items() if value is not _DROP}
    )
    return _pick((9, shaped), (1, _json))


_function = _shaped({"name": st.text(max_size=4), "description": _json, "parameters": _json})
_think = _shaped(
    {
        "provider": _shaped({"model": st.text(max_size=4)}),
        "prompt": st.text(max_size=4),
        "functions": st.lists(_function, max_size=3),
        "toolChoice": st.sampled_from(["auto", "none"])
        | _shaped({"type": st.just("function"), "name": st.text(max_size=3)}),
        "outputModalities": st.lists(st.sampled_from(["audio", "text", "x"]), max_size=3),
        "maxOutputTokens": st.integers(min_value=-5, max_value=5000),
        "managedPrompt": _shaped(
            {"id": st.text(max_size=3), "version": st.text(max_size=3), "variables": _json}
        ),
    }
)
_speak = _shaped({"provider": _shaped({"voice": st.text(max_size=4)})})
_call = _shaped(
    {"id": st.text(max_size=3), "name": st.text(max_size=3), "arguments": _json, "response": _json}
)
_entry = _shaped(
    {
        "type": st.just("History"),
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": st.text(max_size=4),
        "function_calls": st.lists(_call, max_size=3),
    }
)
_direction = _shaped(
    {
        "encoding": st.sampled_from(["linear16", "mulaw", "alaw", "opus"]),
        "sample_rate": st.sampled_from([8000, 16000, 24000, 11025, 16000.0]),
        "container": st.sampled_from(["none", "wav"]),
    }
)
_settings = _shaped(
    {
        "type": st.just("Settings"),
        "audio": _shaped({"input": _direction, "output": _direction}),
        "agent": _shaped(
            {
                "think": _think | st.lists(_think, max_size=3),
                "speak": _speak | st.lists(_speak, max_size=3),
                "context": _shaped({"messages": st.lists(_entry, max_size=4)}),
                "greeting": st.text(max_size=4),
                "idleTimeoutMs": st.integers(min_value=-10, max_value=100000) | st.floats(),
                "sessionAudioOutput": _shaped(
                    {
                        "voice": st.text(max_size=3) | _shaped({"id": st.text(max_size=3)}),
                        "speed": st.floats(),
                    }
                ),
            }
        ),
        "flags": _shaped({"history": st.booleans()}),
    }
)
_options = st.builds(
    SessionOptions,
    turn_detection=st.sampled_from(["server_vad", "semantic_vad", "manual"]),
    greeting=st.sampled_from(["text", "spoken", "off"]),
)

# Client objects passed through verbatim may legitimately hold null.
_VERBATIM = {"parameters", "variables"}


def _assert_no_null(value: Any, path: str) -> None:
    if path == "session.audio.input.turn_detection" and value is None:
        return
    assert value is not None, path
    if isinstance(value, float):
        assert math.isfinite(value), path
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in _VERBATIM:
                _assert_no_null(inner, f"{path}.{key}")
    if isinstance(value, list):
        for index, inner in enumerate(value):
            _assert_no_null(inner, f"{path}[{index}]")


@settings(max_examples=400, deadline=None)
@given(settings_message=_settings, options=_options)
def test_map_settings_is_total(settings_message: Any, options: SessionOptions) -> None:
    try:
        result = map_settings(settings_message, options)
    except UnsupportedAudioFormat as error:
        assert error.description.startswith("Unsupported audio format: ")
        return
    session = result.session
    _assert_no_null(session, "session")
    detection = session["audio"]["input"]["turn_detection"]
    assert (detection is None) == (options.turn_detection == "manual")
    msgspec.json.encode(session)
    msgspec.json.encode(result.context_items)
    for item in result.context_items:
        _assert_no_null(item, "item")
        assert "id" not in item
    assert result.instructions == session["instructions"]
    assert result.output_audio == session["audio"]["output"]
    assert all(isinstance(note, str) and ": " in note for note in result.notes)
    assert result.greeting is None or (isinstance(result.greeting, str) and trim(result.greeting))
