"""Backends whose capabilities are declared from the framework's documentation and source,
but which ptsdk cannot translate jobs for yet. They make the matrix answer "who can run
this?" honestly: every capability they carry is marked ``declared``."""

from __future__ import annotations

from typing import ClassVar

from ptsdk.errors import UnsupportedError
from ptsdk.plugins.backend import Backend, Plan
from ptsdk.spec import Job


class DeclaredBackend(Backend):
    translates: ClassVar[bool] = False

    def translate(self, job: Job) -> Plan:
        raise UnsupportedError(
            f"--backend {self.name}: ptsdk knows what {self.framework} can do (its matrix entries are 'declared') "
            f"but cannot translate jobs for it yet; "
            f"backends that translate: see `ptsdk backends`"
        )
