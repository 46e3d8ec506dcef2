"""GPG- and SSH-signed release tags verified against a keyring / allowed-signers file (real git, gpg, ssh-keygen)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.desired.models import SignatureVerification
from reconciler.source.repository import Repository
from reconciler.source.signatures import verify_tag
from tests.conftest import World, git

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")


def make_gpg_key(home: Path, email: str) -> str:
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                    f"Release <{email}>", "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", email], env=env, check=True,
                             capture_output=True, text=True).stdout
    return next(line.split(":")[4] for line in listing.splitlines() if line.startswith("pub"))


def export_keyring(home: Path, key: str, target: Path) -> None:
    env = {**os.environ, "GNUPGHOME": str(home)}
    data = subprocess.run(["gpg", "--batch", "--export", key], env=env, check=True, capture_output=True).stdout
    target.write_bytes(data)


def signed_tag(world: World, home: Path, key: str, name: str) -> None:
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["git", "-C", str(world.repo), "-c", f"user.signingkey={key}", "-c", "gpg.format=openpgp",
                    "-c", "user.name=Release", "-c", "user.email=release@example.com",
                    "tag", "-s", name, "-m", f"Release {name}"], env=env, check=True, capture_output=True)


@needs_gpg
def test_a_gpg_signed_tag_verifies_against_the_keyring_and_others_do_not(tmp_path: Path, pyworld: World) -> None:
    trusted = make_gpg_key(tmp_path / "gpg-trusted", "release@example.com")
    stranger = make_gpg_key(tmp_path / "gpg-stranger", "someone@example.com")
    keyring = tmp_path / "trusted.gpg"
    export_keyring(tmp_path / "gpg-trusted", trusted, keyring)
    signed_tag(pyworld, tmp_path / "gpg-trusted", trusted, "v1.0.0")
    signed_tag(pyworld, tmp_path / "gpg-stranger", stranger, "v1.0.1")
    git(pyworld.repo, "tag", "-a", "v1.0.2", "-m", "unsigned")
    git(pyworld.repo, "tag", "v1.0.3")
    repo = Repository(str(pyworld.repo))
    config = SignatureVerification(gpg_keyring=str(keyring))

    def check(name: str) -> tuple[bool, str]:
        tag = repo.tag(name)
        assert tag is not None
        result = verify_tag(repo, tag, config)
        return result.ok, result.reason

    assert check("v1.0.0") == (True, "")
    assert check("v1.0.1") == (False, "signed with a key that is not in the trusted keyring")
    assert check("v1.0.2") == (False, "the tag is not signed (git tag -s)")
    assert check("v1.0.3") == (False, "lightweight tags carry no signature; sign an annotated tag (git tag -s)")
    # A signature that no longer matches its tag (the message was edited after signing) is bad.
    tag = repo.tag("v1.0.0")
    assert tag is not None
    raw = repo.raw_object(tag.object_id).replace(b"Release v1.0.0", b"Release v9.9.9")
    from reconciler.source import signatures

    parts = signatures._split(raw)
    assert parts is not None
    assert signatures._verify(*parts, config).reason == "bad GPG signature"


def test_an_ssh_signed_tag_without_a_configured_allowed_signers_file_is_refused(tmp_path: Path,
                                                                                pyworld: World) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    git(pyworld.repo, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", "v2.0.0", "-m", "x")
    repo = Repository(str(pyworld.repo))
    tag = repo.tag("v2.0.0")
    assert tag is not None
    result = verify_tag(repo, tag, SignatureVerification(gpg_keyring="/nonexistent"))
    assert (result.ok, result.reason) == (False, "SSH-signed, but no ssh_allowed_signers file is configured")
