"""The built-in mock upstream for ``fastproxy serve`` without an API key.

With no key and no explicit upstream URL, the proxy starts the mock OpenAI Realtime upstream
(fastproxy.testing.mock_upstream) in-process on a loopback port and points itself at it, so a
newcomer gets complete turns with nothing to configure. The CLI logs a loud warning about it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastproxy.config import Config
    from fastproxy.testing.mock_upstream import MockUpstream

log = logging.getLogger("fastproxy.server")


@dataclass
class RunningMock:
    mock: MockUpstream
    config: Config  # the proxy's config, pointed at the mock

    async def stop(self) -> None:
        await self.mock.stop(raise_hook_errors=False)


async def maybe_start_mock_upstream(config: Config) -> RunningMock | None:
    if not config.use_mock_upstream:
        return None
    from fastproxy.testing.mock_upstream import MockUpstream

    mock = await MockUpstream(host="127.0.0.1", port=0).start()
    # The CLI has already logged the loud "no API key: built-in mock" warning.
    log.info("built-in mock upstream listening on %s", mock.url)
    return RunningMock(mock, dataclasses.replace(config, upstream_url=mock.url))
