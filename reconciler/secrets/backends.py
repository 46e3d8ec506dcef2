"""Secret backends and the resolver that expands ``${secret:NAME}`` references.

Called by providers at write time (through ``SecretResolver``) and by the renderer, which only
needs fingerprints. Backends: ``env`` (environment variable NAME) and ``files:DIR`` (the file
DIR/NAME, trailing newline stripped, as Docker and Kubernetes mount secrets). Error messages name
the secret and the backends searched, never a value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from reconciler.desired.models import SECRET_REFERENCE
from reconciler.errors import ConfigError, SecretError


class Backend(Protocol):
    label: str

    def get(self, name: str) -> str | None: ...


class EnvBackend:
    label = "env"

    def get(self, name: str) -> str | None:
        return os.environ.get(name)


class FilesBackend:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.label = f"files:{directory}"

    def get(self, name: str) -> str | None:
        path = self.directory / name
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(self.directory.resolve()):
                # Kubernetes mounts use links inside the directory; anything else is refused.
                return None
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise SecretError(f"secret {name}: cannot read from {self.label}: {exc.strerror}") from None


class StaticBackend:
    """Values given in memory (the demo and tests)."""

    label = "static"

    def __init__(self, values: dict[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)


def backends_from_config(specs: list[str]) -> list[Backend]:
    out: list[Backend] = []
    for spec in specs:
        if spec == "env":
            out.append(EnvBackend())
        elif spec.startswith("files:") and len(spec) > len("files:"):
            out.append(FilesBackend(Path(spec.removeprefix("files:"))))
        else:
            raise ConfigError(f"unknown secret backend {spec!r}; use 'env' or 'files:/path/to/dir'")
    return out


class Secrets:
    """Resolves secret names through the configured backends, first hit wins."""

    def __init__(self, backends: list[Backend]) -> None:
        self.backends = backends

    def get(self, name: str) -> str:
        for backend in self.backends:
            value = backend.get(name)
            if value is not None:
                return value
        searched = ", ".join(b.label for b in self.backends) or "no backends configured"
        raise SecretError(f"secret {name} is not set (searched: {searched})")

    def resolve(self, template: str) -> str:
        """``template`` with every ``${secret:NAME}`` replaced by its value."""
        return SECRET_REFERENCE.sub(lambda m: self.get(m.group(1)), template)

    def names(self, template: str) -> list[str]:
        return SECRET_REFERENCE.findall(template)
