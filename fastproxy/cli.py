"""The ``fastproxy`` command line: ``serve``, ``mock-upstream``, ``say`` and ``bench``.

This module only wires argparse to the components: settings come from ``fastproxy.config``
(whose table also generates the ``serve`` flags), logging from ``fastproxy.logs``. Every component
is imported lazily inside its command so that ``fastproxy --help`` stays fast and a command whose
module is missing from this build fails with a clear message instead of a traceback. Usage and
configuration errors print one message on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from fastproxy import __version__
from fastproxy.config import ConfigError, add_config_arguments, config_from_values

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DESCRIPTION = """\
fastproxy lets Deepgram Voice Agent clients talk to the OpenAI Realtime API.

Quick start:
  fastproxy serve                      # no API key: serves with the built-in mock upstream
  OPENAI_API_KEY=sk-... fastproxy serve
  fastproxy say "Hello there"          # talk to a running proxy
"""

_SERVE_DESCRIPTION = """\
Run the proxy. Clients connect with WebSockets to ws://HOST:PORT/openai (or
/v1/agent/converse, the path the Deepgram SDKs use).

Every setting can be given as a flag or as an environment variable; the flag wins.
The OpenAI API key is read from FASTPROXY_OPENAI_API_KEY, OPENAI_API_KEY or
--api-key-file, never from a flag value (command lines are visible to other users).
With no API key and no --upstream-url, the proxy runs the built-in mock upstream
in-process (for trying it out and for tests) and says so loudly in its log.
"""

_SERVE_EPILOG = """\
examples:
  fastproxy serve --port 9000 --log-level debug
  FASTPROXY_AUTH_TOKENS=s3cret fastproxy serve --host 0.0.0.0
  fastproxy serve --host 0.0.0.0 --auth-tokens-file /run/secrets/tokens --log-format json

Set FASTPROXY_NO_EXTENSIONS=1 to run the pure-Python audio path instead of the compiled one.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=36)


def _fail(message: str) -> int:
    print(f"fastproxy: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastproxy",
        description=_DESCRIPTION,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"fastproxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the proxy",
        description=_SERVE_DESCRIPTION,
        epilog=_SERVE_EPILOG,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    add_config_arguments(serve)
    serve.set_defaults(handler=_cmd_serve)

    mock = sub.add_parser(
        "mock-upstream",
        help="run the mock OpenAI Realtime server (no API key needed)",
        description=(
            "Run the scriptable mock of the OpenAI Realtime API that the tests use, as a "
            "standalone server. Point the proxy at it with --upstream-url ws://HOST:PORT/."
        ),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    mock.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    mock.add_argument(
        "--port", type=_port, default=9000, help="listen port, 0 = any (default %(default)s)"
    )
    mock.add_argument(
        "--mode",
        choices=("default", "echo", "vad"),
        default="default",
        help="default: answer session.update and responses with canned audio; echo: play the "
        "caller's audio back; vad: also emit server-VAD speech events (default %(default)s)",
    )
    mock.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "warn", "error"),
        default="info",
        type=str.lower,
        help="log level (default %(default)s)",
    )
    mock.set_defaults(handler=_cmd_mock_upstream)

    say = sub.add_parser(
        "say",
        help="send one utterance through a running proxy and play or save the answer",
        description=(
            "Connect to a running proxy as a Deepgram Voice Agent client, inject TEXT as the "
            "user's message, and report the agent's answer (text, timings, audio)."
        ),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    say.add_argument("text", metavar="TEXT", help="what the user says")
    say.add_argument(
        "--url",
        default="ws://127.0.0.1:8080/openai",
        help="proxy WebSocket URL (default %(default)s)",
    )
    say.add_argument(
        "--token", default=None, help="client token, when the proxy runs with auth=token"
    )
    say.add_argument("--wav", metavar="PATH", default=None, help="save the answer's audio here")
    say.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="give up after this long (default %(default)s)",
    )
    say.set_defaults(handler=_cmd_say)

    bench = sub.add_parser(
        "bench",
        help="run the end-to-end load benchmark",
        description=(
            "Run the end-to-end load benchmark (proxy + mock upstream + simulated clients on "
            "loopback): sessions, CPU time per audio frame, latency, memory."
        ),
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    try:  # argparse only: the benchmark itself is imported when it runs
        from fastproxy.tools.bench_options import add_arguments as add_bench_arguments
    except ImportError:  # a build without the benchmark: `fastproxy bench` says so when run
        pass
    else:
        add_bench_arguments(bench)
    bench.set_defaults(handler=_cmd_bench)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not in 0-65535")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``fastproxy`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.handler
    try:
        return handler(args, os.environ if environ is None else environ)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# --------------------------------------------------------------------------- commands


def _import_component(module: str, what: str) -> ModuleType | None:
    """Import ``module``; None (after printing why) when it is not part of this build."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            print(
                f"fastproxy: error: {what} is not available in this build ({module} is missing)",
                file=sys.stderr,
            )
            return None
        raise


def _get_entry(module: ModuleType, name: str, what: str) -> Callable[..., Any] | None:
    entry = getattr(module, name, None)
    if not callable(entry):
        print(
            f"fastproxy: error: {what} is not available in this build "
            f"({module.__name__}.{name} is missing)",
            file=sys.stderr,
        )
        return None
    return entry  # type: ignore[no-any-return]


def _run(result: object) -> int:
    """Run a coroutine if the component returned one; map its result to an exit status."""
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    if result is None:
        return EXIT_OK
    if isinstance(result, bool):
        return EXIT_OK if result else EXIT_FAILURE
    return result if isinstance(result, int) else EXIT_OK


async def _await(awaitable: Any) -> object:
    return await awaitable


def _cmd_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from fastproxy.logs import setup_logging

    try:
        config = config_from_values(vars(args), environ)
    except ConfigError as exc:
        return _fail(str(exc))
    module = _import_component("fastproxy.net.server", "the proxy server")
    if module is None:
        return EXIT_USAGE
    run_server = _get_entry(module, "run_server", "the proxy server")
    if run_server is None:
        return EXIT_USAGE
    setup_logging(config.log_level, config.log_format, config.secrets)
    log = logging.getLogger("fastproxy")
    for warning in config.startup_warnings():
        log.warning(warning)
    log.info("fastproxy %s starting", __version__, extra=config.describe())
    return _run(run_server(config))


def _cmd_mock_upstream(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from fastproxy.logs import setup_logging

    module = _import_component("fastproxy.testing.mock_upstream", "the mock upstream")
    if module is None:
        return EXIT_USAGE
    run = _get_entry(module, "run", "the mock upstream")
    if run is None:
        return EXIT_USAGE
    setup_logging(args.log_level, "text", ())
    return _run(run(host=args.host, port=args.port, mode=args.mode))


def _cmd_say(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    module = _import_component("fastproxy.tools.say", "the say tool")
    if module is None:
        return EXIT_USAGE
    run = _get_entry(module, "run", "the say tool")
    if run is None:
        return EXIT_USAGE
    return _run(run(args.text, url=args.url, token=args.token, wav=args.wav, timeout=args.timeout))


def _cmd_bench(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    module = _import_component("fastproxy.tools.bench", "the benchmark")
    if module is None:
        return EXIT_USAGE
    run = _get_entry(module, "run", "the benchmark")
    if run is None:
        return EXIT_USAGE
    options = {k: v for k, v in vars(args).items() if k not in ("command", "handler")}
    return _run(run(**options))
