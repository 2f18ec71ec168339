"""The .pyi stubs of the compiled modules match what the extensions export (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fastproxy import audio

ALLOWLIST = Path(__file__).parent.parent / "stubtest_allowlist.txt"


@pytest.mark.skipif(audio.IMPLEMENTATION != "c", reason="the compiled modules are not built")
def test_stubs_of_the_compiled_modules_match_them() -> None:
    modules = ["fastproxy.audio._audio_c", "fastproxy.net._relay_c"]
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--allowlist", str(ALLOWLIST), *modules],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
