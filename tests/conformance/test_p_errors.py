"""§13.11 Errors: P-108 … P-110, end to end over real sockets."""

from __future__ import annotations

from e2e_kit import created, done, text_done, upstream_error


async def test_p108_mapping_by_code(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        sorry = "The server had an error while processing your request. Sorry about that!"
        u.send(
            upstream_error(
                "rate_limit_exceeded", "Rate limit exceeded", None, "invalid_request_error"
            )
        )
        u.send(upstream_error("server_error", sorry, None, "server_error"))
        u.send({"type": "error"})
        await c.wait_type("Error", count=3, since=mark)
        await e.quiet(c)
        assert c.json(mark) == [
            {"type": "Error", "description": "Rate limit exceeded", "code": "rate_limit_exceeded"},
            {"type": "Error", "description": sorry, "code": "server_error"},
            {"type": "Error", "description": "Unknown error", "code": "unknown"},
        ]
        assert not c.closed and not u.closed
        errors = {k: v for k, v in c.stats.upstream_errors.items() if v}
        assert errors == {"rate_limit_exceeded": 1, "server_error": 1, "unknown": 1}


async def test_p109_expected_closures(env):
    message = {
        "session_max_duration": "Your session hit the maximum duration of 60 minutes.",
        "session_expired": "Your session hit the maximum duration of 60 minutes.",
        "idle_timeout": "Session closed due to idle timeout",
    }
    async with env() as e:
        for code, text in message.items():
            c = await e.ready()
            u = c.up
            mark = c.mark()
            u.send(upstream_error(code, text, None, "invalid_request_error"))
            await c.wait_type("Error", since=mark)
            u.close(1011)
            await c.wait_closed()
            assert c.json(mark) == [{"type": "Error", "description": text, "code": code}]
            assert c.close_code == 1000, code


async def test_p110_idle_timeout_during_a_response_is_held(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        u.send(
            {
                "type": "error",
                "error": {"code": "idle_timeout", "message": "Session closed due to idle timeout"},
            }
        )
        u.send(text_done("resp_1", "item_a1", "Goodbye."))
        u.send(done("resp_1"))
        await c.wait_type("Error", since=mark)
        await e.quiet(c)
        msgs = [m for m in c.json(mark) if m["type"] != "History"]
        assert msgs == [
            {"type": "ConversationText", "role": "assistant", "content": "Goodbye."},
            {"type": "AgentAudioDone"},
            {
                "type": "Error",
                "description": "Session closed due to idle timeout",
                "code": "idle_timeout",
            },
        ]
