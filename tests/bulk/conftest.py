"""The bulk runner's tests use the moderation tests' doubles (a scripted scanner, the emulator as judge)."""

from tests.moderation.conftest import emulator, judge, scanner

__all__ = ["emulator", "judge", "scanner"]
