"""Operator configuration: every setting of PROTOCOL.md Appendix B, resolved and validated once.

The package: ``values`` (the value parsers and ``ConfigError``), ``table`` (the settings table
``SETTINGS``: name, environment variables, flag, default, parser), ``model`` (the frozen
:class:`Config` that the rest of the process reads) and, here, the resolution rule (flag, then
environment variable, then its fallback, then default). Resolution is pure: the caller
passes ``argv`` and the environment explicitly, so tests never touch ``os.environ``. Every invalid
value raises :class:`ConfigError` whose message names the setting and where the value came from;
values of secrets are never echoed. ``fastproxy.cli`` reuses :func:`add_config_arguments` so the
``serve`` flags and their help text come from the same table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from fastproxy.config.model import Config, is_loopback_host
from fastproxy.config.table import DEFAULT_UPSTREAM_URL, SETTINGS, Setting
from fastproxy.config.values import ConfigError, _Invalid

__all__ = [
    "DEFAULT_UPSTREAM_URL",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "add_config_arguments",
    "config_from_values",
    "is_loopback_host",
    "load_config",
]


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting; every default is ``None`` meaning "not given"."""
    group = parser.add_argument_group(
        "settings",
        "Precedence: flag, then environment variable, then default. Booleans accept\n"
        "1/true/yes/on and 0/false/no/off. An empty environment variable counts as unset.\n"
        "An invalid value stops the start-up with an error naming the setting.",
    )
    for s in SETTINGS:
        assert s.flag is not None
        default = s.show_default if s.show_default is not None else _show(s.default)
        help_text = f"{s.help} [env {' / '.join(s.env)}; default {default}]"
        if s.boolean:
            group.add_argument(
                s.flag, dest=s.dest, action="store_const", const=True, default=None, help=help_text
            )
            group.add_argument(
                "--no-" + s.flag[2:],
                dest=s.dest,
                action="store_const",
                const=False,
                default=None,
                help=f"disable {s.flag}",
            )
        else:
            metavar = s.metavar or _metavar(s.name)
            group.add_argument(s.flag, dest=s.dest, default=None, metavar=metavar, help=help_text)


_METAVARS = {
    "turn_detection": "MODE",
    "greeting": "MODE",
    "auth": "MODE",
    "log_level": "LEVEL",
    "log_format": "FORMAT",
    "allowed_origins": "ORIGINS",
    "transcription_model": "MODEL",
    "transcription_language": "LANG",
}


def _metavar(name: str) -> str:
    if name in _METAVARS:
        return _METAVARS[name]
    for suffix, metavar in (("_ms", "MS"), ("_bytes", "BYTES"), ("port", "PORT")):
        if name.endswith(suffix):
            return metavar
    return "N" if name.startswith(("max_", "queue_max_")) else name.upper()


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "empty"
    return "none" if value is None else str(value)


def load_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
    """Build the Config from setting flags (``argv``; ``None`` = no flags) and ``environ``.

    Raises ConfigError naming the setting on any invalid value or unknown flag.
    """
    parser = _ArgParser(prog="fastproxy serve", add_help=False, allow_abbrev=False)
    add_config_arguments(parser)
    namespace = parser.parse_args(list(argv or ()))
    return config_from_values(vars(namespace), environ)


def config_from_values(values: Mapping[str, object], environ: Mapping[str, str]) -> Config:
    """Build the Config from already-parsed flag values (keyed by argparse ``dest``; ``None`` or
    absent = not given) and ``environ``."""
    resolved: dict[str, object] = {}
    explicit: set[str] = set()
    for s in SETTINGS:
        value, given = _resolve(s, values, environ)
        resolved[s.name] = value
        if given:
            explicit.add(s.name)

    host = str(resolved["host"])
    if resolved["auth"] is None:
        resolved["auth"] = "none" if is_loopback_host(host) else "token"
    tokens = resolved["auth_tokens"]
    if resolved["auth"] == "token" and not tokens:
        how = "auth=token" if "auth" in explicit else f"auth defaults to token on host {host!r}"
        raise ConfigError(
            f"auth: {how} but no client token is configured; set FASTPROXY_AUTH_TOKENS or "
            "--auth-tokens-file (or --auth none explicitly, which is unsafe off loopback)",
            "auth",
        )
    port, metrics_port = resolved["port"], resolved["metrics_port"]
    if metrics_port is not None and metrics_port != 0 and metrics_port == port:
        raise ConfigError(
            f"metrics_port: {metrics_port} is the same as port; choose another port or none",
            "metrics_port",
        )
    return Config(**resolved, upstream_url_explicit="upstream_url" in explicit)  # type: ignore[arg-type]


def _resolve(
    s: Setting, values: Mapping[str, object], environ: Mapping[str, str]
) -> tuple[object, bool]:
    raw = values.get(s.dest)
    if raw is not None:
        return _parse(s, s.parse_flag or s.parse, raw, str(s.flag)), True
    for var in s.env:
        env_raw = environ.get(var)
        if env_raw is not None and env_raw.strip():
            return _parse(s, s.parse, env_raw, var), True
    return s.default, False


def _parse(s: Setting, parse: Callable[[object], object], raw: object, source: str) -> object:
    try:
        return parse(raw)
    except _Invalid as exc:
        raise ConfigError(f"invalid {s.name} (from {source}): {exc}", s.name) from None
