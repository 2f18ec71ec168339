"""``fastproxy say TEXT``: one user turn through a running proxy, as a Deepgram client would.

The tool connects to the proxy (PROTOCOL.md §3.1), waits for ``Welcome``, sends a ``Settings``
with linear16 24 kHz audio both ways, waits for ``SettingsApplied``, injects TEXT as the user's
message (§7.5) and prints every server message (§8.1) on one line each, consecutive binary audio
messages summarized as one line. The turn is complete when, after the proxy has echoed the user's
message as ``ConversationText``, both ``AgentAudioDone`` and the assistant's ``ConversationText``
have arrived (in either order; the upstream normally ends the audio before the transcript).
Arming on the user echo keeps a greeting (§5.2), which precedes it, from ending the turn early.

Exit status: 0 when the turn completed; 1 on timeout, connection failure or an early close. The
received PCM can be saved as a 24 kHz mono 16-bit WAV file.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave
from dataclasses import dataclass, field
from typing import IO, Any

from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["SETTINGS", "SayResult", "run", "say"]

SAMPLE_RATE = 24000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000
CLOSE_GRACE_S = 2.0  # how long a close we start waits for the proxy's close frame (§3.6)
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

SETTINGS: dict[str, Any] = {
    "type": "Settings",
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": SAMPLE_RATE},
        "output": {"encoding": "linear16", "sample_rate": SAMPLE_RATE, "container": "none"},
    },
}

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass
class _Closed:
    """The connection ended; ``code``/``reason`` come from the proxy's close frame, if any."""

    code: int | None = None
    reason: str = ""


_Incoming = tuple[WSMsgType, bytes] | _Closed


class _Listener(WSListener):
    """Queues whole messages (reassembling fragments, PROTOCOL.md W6) for the coroutine."""

    def __init__(self, inbox: asyncio.Queue[_Incoming]) -> None:
        super().__init__()
        self.inbox = inbox
        self.closed = _Closed()
        self._fragments: bytearray | None = None
        self._fragment_type = WSMsgType.TEXT

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            code = frame.get_close_code()
            self.closed = _Closed(int(code.value), frame.get_close_reason() or "")
            if not transport.is_close_frame_sent:
                transport.send_close(code)
            transport.disconnect()
        elif msg_type == WSMsgType.CONTINUATION:
            if self._fragments is not None:
                self._fragments += frame.get_payload_as_memoryview()
                if frame.fin:
                    self.inbox.put_nowait((self._fragment_type, bytes(self._fragments)))
                    self._fragments = None
        elif msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if frame.fin:
                self.inbox.put_nowait((msg_type, frame.get_payload_as_bytes()))
            else:
                self._fragment_type = msg_type
                self._fragments = bytearray(frame.get_payload_as_memoryview())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.inbox.put_nowait(self.closed)


@dataclass
class SayResult:
    """What one ``say`` run saw (for callers using :func:`say` as a library)."""

    exit_code: int = EXIT_FAILED
    assistant_text: str | None = None
    audio: bytearray = field(default_factory=bytearray)
    events: list[dict[str, Any]] = field(default_factory=list)


class _Printer:
    """One line per event, prefixed by the time since the tool started."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.start = time.monotonic()
        self.audio_messages = 0
        self.audio_bytes = 0

    def line(self, label: str, detail: str = "") -> None:
        self.flush_audio()
        stamp = time.monotonic() - self.start
        print(f"{stamp:8.3f}s  {label:<22} {detail}".rstrip(), file=self.out, flush=True)

    def audio(self, size: int) -> None:
        self.audio_messages += 1
        self.audio_bytes += size

    def flush_audio(self) -> None:
        if self.audio_messages:
            messages, size = self.audio_messages, self.audio_bytes
            self.audio_messages = self.audio_bytes = 0
            self.line(
                "<- audio", f"{messages} binary messages, {size} bytes ({_ms(size)} ms of audio)"
            )


def _ms(size: int) -> int:
    return size // BYTES_PER_MS


def describe(event: dict[str, Any]) -> str:
    """The interesting fields of a server message (§8.1), for one output line."""
    kind = event.get("type")
    if kind == "ConversationText":
        return f"{event.get('role')}: {json.dumps(event.get('content'), ensure_ascii=False)}"
    if kind in ("Error", "Warning"):
        return f"[{event.get('code')}] {event.get('description')}"
    if kind == "AgentStartedSpeaking":
        return " ".join(
            f"{name}={event.get(name)}s" for name in ("total_latency", "tts_latency", "ttt_latency")
        )
    if kind == "FunctionCallRequest":
        calls = event.get("functions")
        if isinstance(calls, list):
            return "; ".join(
                f"{c.get('name')}({c.get('arguments')}) id={c.get('id')}"
                for c in calls
                if isinstance(c, dict)
            )
    rest = {k: v for k, v in event.items() if k != "type"}
    text = json.dumps(rest, ensure_ascii=False, separators=(",", ":")) if rest else ""
    return text if len(text) <= 200 else text[:197] + "..."


class _Turn:
    """The client side of one turn: what to send next, and when the turn is complete."""

    def __init__(self, text: str, transport: WSTransport, printer: _Printer) -> None:
        self.text = text
        self.transport = transport
        self.printer = printer
        self.waiting_for = "Welcome"
        self.armed = False  # the proxy echoed our message: what follows is the answer
        self.audio_done = False
        self.assistant_text: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.printer.line(f"-> {message['type']}", describe(message))
        self.transport.send(WSMsgType.TEXT, json.dumps(message).encode())

    def on_event(self, event: dict[str, Any]) -> bool:
        """Handle one server message; True when the turn is complete."""
        kind = event.get("type")
        self.printer.line(f"<- {kind}", describe(event))
        if kind == "Welcome" and self.waiting_for == "Welcome":
            self.send(SETTINGS)
            self.waiting_for = "SettingsApplied"
        elif kind == "SettingsApplied" and self.waiting_for == "SettingsApplied":
            self.send({"type": "InjectUserMessage", "content": self.text})
            self.waiting_for = "the echo of the user's message"
        elif kind == "ConversationText":
            role = event.get("role")
            if role == "user" and not self.armed and self.waiting_for.startswith("the echo"):
                self.armed = True
            elif role == "assistant" and self.armed and self.assistant_text is None:
                content = event.get("content")
                self.assistant_text = content if isinstance(content, str) else ""
        elif kind == "AgentAudioDone" and self.armed:
            self.audio_done = True
        if self.armed:
            self.waiting_for = self._missing()
        return self.armed and self.audio_done and self.assistant_text is not None

    def _missing(self) -> str:
        if not self.audio_done and self.assistant_text is None:
            return "the answer (AgentAudioDone and the assistant's ConversationText)"
        if not self.audio_done:
            return "AgentAudioDone"
        return "the assistant's ConversationText"


async def say(
    text: str,
    *,
    url: str = "ws://127.0.0.1:8080/openai",
    token: str | None = None,
    wav: str | None = None,
    timeout: float = 30.0,
    out: IO[str] | None = None,
) -> SayResult:
    """Run one turn against the proxy at ``url``; print events on ``out`` (default stdout)."""
    out = sys.stdout if out is None else out
    printer = _Printer(out)
    result = SayResult()
    inbox: asyncio.Queue[_Incoming] = asyncio.Queue()
    headers = {"Authorization": f"Token {token}"} if token else None
    transport: WSTransport | None = None
    turn: _Turn | None = None
    try:
        async with asyncio.timeout(timeout):
            printer.line("connecting", url)
            try:
                transport, _ = await ws_connect(
                    lambda: _Listener(inbox),
                    url,
                    extra_headers=headers,
                    websocket_handshake_timeout=timeout,
                    max_frame_size=MAX_MESSAGE_BYTES,
                )
            except (OSError, WSError) as exc:
                _fail(out, f"cannot connect to {url}: {exc}")
                return result
            turn = _Turn(text, transport, printer)
            result.exit_code = await _converse(turn, inbox, result, out)
    except TimeoutError:
        waiting = turn.waiting_for if turn is not None else "the connection"
        printer.flush_audio()
        _fail(out, f"timed out after {timeout:g} s waiting for {waiting}")
        result.exit_code = EXIT_FAILED
    finally:
        printer.flush_audio()
        if transport is not None:
            await _close(transport, inbox)
    if wav is not None and transport is not None:
        _write_wav(wav, result.audio)
        printer.line("wrote", f"{wav} ({len(result.audio)} bytes of PCM, {SAMPLE_RATE} Hz mono)")
    if result.exit_code == EXIT_OK:
        printer.line(
            "done",
            f"answer {json.dumps(result.assistant_text, ensure_ascii=False)}, "
            f"{len(result.audio)} bytes of audio ({_ms(len(result.audio))} ms)",
        )
    return result


async def _converse(
    turn: _Turn, inbox: asyncio.Queue[_Incoming], result: SayResult, out: IO[str]
) -> int:
    while True:
        item = await inbox.get()
        if isinstance(item, _Closed):
            reason = f" {item.code} {item.reason}".rstrip() if item.code is not None else ""
            turn.printer.flush_audio()
            _fail(out, f"the proxy closed the connection{reason} before {turn.waiting_for}")
            return EXIT_FAILED
        msg_type, payload = item
        if msg_type == WSMsgType.BINARY:
            result.audio += payload
            turn.printer.audio(len(payload))
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            turn.printer.line("<- (not JSON)", repr(payload[:80]))
            continue
        if not isinstance(event, dict):
            turn.printer.line("<- (not an object)", repr(payload[:80]))
            continue
        result.events.append(event)
        if turn.on_event(event):
            result.assistant_text = turn.assistant_text
            return EXIT_OK


async def _close(transport: WSTransport, inbox: asyncio.Queue[_Incoming]) -> None:
    """Close handshake (1000), bounded by CLOSE_GRACE_S; then drop the TCP connection."""
    if not transport.is_disconnected:
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        try:
            async with asyncio.timeout(CLOSE_GRACE_S):
                await transport.wait_disconnected()
        except Exception:  # timeout, or a listener error re-raised here: dropping anyway
            pass
    transport.disconnect(False)


def _write_wav(path: str, pcm: bytes | bytearray) -> None:
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(pcm[: len(pcm) - len(pcm) % 2]))


def _fail(out: IO[str], message: str) -> None:
    print(f"fastproxy say: {message}", file=sys.stderr, flush=True)
    if out is not sys.stdout:
        print(f"fastproxy say: {message}", file=out, flush=True)


def run(
    text: str,
    *,
    url: str = "ws://127.0.0.1:8080/openai",
    token: str | None = None,
    wav: str | None = None,
    timeout: float = 30.0,
) -> int:
    """The ``fastproxy say`` entry point: runs :func:`say` on uvloop; returns the exit status."""
    import uvloop

    result: SayResult = uvloop.run(say(text, url=url, token=token, wav=wav, timeout=timeout))
    return result.exit_code
