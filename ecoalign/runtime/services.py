"""The adapters one job step needs: the chat model, the scanner and the node evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecoalign.evaluators.base import NodeEvaluator, Scanner
from ecoalign.providers.base import ChatProvider


@dataclass
class Services:
    provider: ChatProvider
    scanner: Scanner
    evaluator: NodeEvaluator
    closers: list = field(default_factory=list)  # things to close when the process is done with them

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()
