"""Keyed fingerprints of secret values (HMAC-SHA256).

Drift on a secret is found by comparing fingerprints, never values. The key comes from the
configuration or is generated once into the data directory (mode 0600), so fingerprints are stable
across restarts but useless to anyone without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.secrets.backends import Secrets
from reconciler.secrets.values import Sensitive

KEY_FILE = "fingerprint.key"


def load_or_create_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise ConfigError(f"{path} is not a hex key; delete it to generate a new one") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    os.replace(tmp, path)
    return key


class Fingerprinter:
    def __init__(self, key: bytes, secrets_: Secrets) -> None:
        self._key = key
        self.secrets = secrets_

    def of_value(self, value: str) -> str:
        return "hmac-sha256:" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def sensitive(self, template: str) -> Sensitive:
        """Resolve ``template`` and return it as a Sensitive (the value itself is dropped here)."""
        return Sensitive(template=template, fingerprint=self.of_value(self.secrets.resolve(template)))
