"""Verify the GPG or SSH signature of an annotated release tag (and optionally its commit).

Called by ``reconcile.py`` when an environment sets ``track.verify_signatures``. Git stores a
tag's signature appended to the tag object; the signed payload is the object without it. GPG
signatures are checked with ``gpg`` against the configured keyring (in a throwaway GNUPGHOME), SSH
signatures with ``ssh-keygen -Y verify`` against an allowed-signers file — the same tools and
semantics as ``git verify-tag``.

``tag_signer`` answers a different question for ``allowed_signers`` and ``approvers`` (issue 13):
*which* key made the tag's signature, and does the signature verify with it. An SSH signature
carries its public key, so it is verified against that key alone; a GPG signature is verified
against the environment's keyring and named by the fingerprints gpg reports.
"""

from __future__ import annotations

import base64
import binascii
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pygit2

from reconciler.core.gates import SignedBy
from reconciler.core.revisions import TagRef
from reconciler.desired.models import SignatureVerification, ssh_key_fingerprint
from reconciler.source.repository import Repository

_PGP = b"-----BEGIN PGP SIGNATURE-----"
_SSH = b"-----BEGIN SSH SIGNATURE-----"
_TIMEOUT = 20


@dataclass(frozen=True)
class SignatureResult:
    ok: bool
    reason: str = ""


def _split(raw: bytes) -> tuple[bytes, bytes, str] | None:
    for marker, kind in ((_PGP, "gpg"), (_SSH, "ssh")):
        index = raw.find(marker)
        if index != -1:
            return raw[:index], raw[index:], kind
    return None


def _gpg(payload: bytes, signature: bytes, keyring: str) -> SignatureResult:
    with tempfile.TemporaryDirectory() as home:
        sig = Path(home) / "sig.asc"
        data = Path(home) / "payload"
        sig.write_bytes(signature)
        data.write_bytes(payload)
        try:
            proc = subprocess.run(
                ["gpg", "--homedir", home, "--batch", "--no-default-keyring", "--keyring", str(Path(keyring).resolve()),
                 "--trust-model", "always", "--status-fd", "1", "--verify", str(sig), str(data)],
                capture_output=True, timeout=_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            return SignatureResult(False, "gpg is not installed, so GPG signatures cannot be verified")
        except subprocess.TimeoutExpired:
            return SignatureResult(False, "gpg timed out verifying the signature")
        status = proc.stdout.decode(errors="replace")
        if proc.returncode == 0 and "[GNUPG:] VALIDSIG" in status and "[GNUPG:] GOODSIG" in status:
            return SignatureResult(True)
        if "NO_PUBKEY" in status:
            return SignatureResult(False, "signed with a key that is not in the trusted keyring")
        return SignatureResult(False, "bad GPG signature")


def _ssh(payload: bytes, signature: bytes, allowed_signers: str) -> SignatureResult:
    with tempfile.TemporaryDirectory() as home:
        sig = Path(home) / "sig"
        sig.write_bytes(signature)
        allowed = str(Path(allowed_signers).resolve())
        try:
            found = subprocess.run(
                ["ssh-keygen", "-Y", "find-principals", "-f", allowed, "-s", str(sig)],
                input=payload, capture_output=True, timeout=_TIMEOUT, check=False,
            )
            principals = found.stdout.decode(errors="replace").split()
            if found.returncode != 0 or not principals:
                return SignatureResult(False, "signed with an SSH key that is not in the allowed-signers file")
            proc = subprocess.run(
                ["ssh-keygen", "-Y", "verify", "-f", allowed, "-I", principals[0], "-n", "git", "-s", str(sig)],
                input=payload, capture_output=True, timeout=_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            return SignatureResult(False, "ssh-keygen is not installed, so SSH signatures cannot be verified")
        except subprocess.TimeoutExpired:
            return SignatureResult(False, "ssh-keygen timed out verifying the signature")
        if proc.returncode == 0:
            return SignatureResult(True)
        return SignatureResult(False, "bad SSH signature")


def _verify(payload: bytes, signature: bytes, kind: str, config: SignatureVerification) -> SignatureResult:
    if kind == "gpg":
        if not config.gpg_keyring:
            return SignatureResult(False, "GPG-signed, but no gpg_keyring is configured to trust")
        return _gpg(payload, signature, config.gpg_keyring)
    if not config.ssh_allowed_signers:
        return SignatureResult(False, "SSH-signed, but no ssh_allowed_signers file is configured")
    return _ssh(payload, signature, config.ssh_allowed_signers)


def verify_tag(repository: Repository, tag: TagRef, config: SignatureVerification) -> SignatureResult:
    if not tag.annotated:
        return SignatureResult(False, "lightweight tags carry no signature; sign an annotated tag (git tag -s)")
    parts = _split(repository.raw_object(tag.object_id))
    if parts is None:
        return SignatureResult(False, "the tag is not signed (git tag -s)")
    result = _verify(*parts, config)
    if not result.ok or not config.commits:
        return result
    return verify_commit(repository, tag.target, config)


def verify_commit(repository: Repository, commit_id: str, config: SignatureVerification) -> SignatureResult:
    commit = repository.repo[commit_id]
    assert isinstance(commit, pygit2.Commit)
    signature = commit.gpg_signature
    if signature is None or signature[0] is None:
        return SignatureResult(False, f"commit {commit_id[:12]} is not signed")
    sig, payload = signature
    kind = "ssh" if sig.startswith(_SSH) else "gpg"
    result = _verify(payload, sig, kind, config)
    return result if result.ok else SignatureResult(False, f"commit {commit_id[:12]}: {result.reason}")


def tag_signer(repository: Repository, tag: TagRef, gpg_keyring: str | None) -> SignedBy:
    """Who signed the annotated tag ``tag`` and whether the signature verifies with that key."""
    if not tag.annotated:
        return SignedBy(reason="a lightweight tag carries no signature")
    parts = _split(repository.raw_object(tag.object_id))
    if parts is None:
        return SignedBy(reason="no 'git tag -s' signature")
    payload, signature, kind = parts
    if kind == "ssh":
        return _ssh_signer(payload, signature)
    return _gpg_signer(payload, signature, gpg_keyring)


def _ssh_signature_key(signature: bytes) -> tuple[str, bytes] | None:
    """The public key (type, blob) an armored SSHSIG signature carries (PROTOCOL.sshsig), or None."""
    body = b"".join(line for line in signature.splitlines() if line and not line.startswith(b"-----"))
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"SSHSIG") or len(raw) < 14:
        return None
    length = int.from_bytes(raw[10:14], "big")
    blob = raw[14:14 + length]
    if len(blob) != length or len(blob) < 4:
        return None
    key_type = blob[4:4 + int.from_bytes(blob[:4], "big")].decode(errors="replace")
    return key_type, blob


def _ssh_signer(payload: bytes, signature: bytes) -> SignedBy:
    found = _ssh_signature_key(signature)
    if found is None:
        return SignedBy(reason="the SSH signature is malformed")
    key_type, blob = found
    fingerprint = ssh_key_fingerprint(blob)
    signed = SignedBy(frozenset({fingerprint}), f"SSH key {fingerprint}")
    with tempfile.TemporaryDirectory() as home:
        sig = Path(home) / "sig"
        sig.write_bytes(signature)
        allowed = Path(home) / "allowed_signers"
        allowed.write_text(f'signer namespaces="git" {key_type} {base64.b64encode(blob).decode()}\n')
        try:
            proc = subprocess.run(
                ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "signer", "-n", "git", "-s", str(sig)],
                input=payload, capture_output=True, timeout=_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            return SignedBy(signed.ids, signed.label, reason="ssh-keygen is not installed")
        except subprocess.TimeoutExpired:
            return SignedBy(signed.ids, signed.label, reason="ssh-keygen timed out")
    if proc.returncode != 0:
        return SignedBy(signed.ids, signed.label, reason="bad SSH signature")
    return SignedBy(signed.ids, signed.label, verified=True)


def _gpg_signer(payload: bytes, signature: bytes, keyring: str | None) -> SignedBy:
    with tempfile.TemporaryDirectory() as home:
        sig = Path(home) / "sig.asc"
        data = Path(home) / "payload"
        sig.write_bytes(signature)
        data.write_bytes(payload)
        ring = ["--no-default-keyring", "--keyring", str(Path(keyring).resolve())] if keyring else []
        try:
            proc = subprocess.run(
                ["gpg", "--homedir", home, "--batch", *ring, "--trust-model", "always", "--status-fd", "1",
                 "--verify", str(sig), str(data)],
                capture_output=True, timeout=_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            return SignedBy(frozenset({"GPG"}), "a GPG key", reason="gpg is not installed")
        except subprocess.TimeoutExpired:
            return SignedBy(frozenset({"GPG"}), "a GPG key", reason="gpg timed out")
    status = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "[GNUPG:]":
            status[words[1]] = words[2:]
    valid = status.get("VALIDSIG")
    if proc.returncode == 0 and valid and "GOODSIG" in status:
        ids = frozenset(w.upper() for w in (valid[0], valid[-1]))
        return SignedBy(ids, f"GPG key {valid[-1].upper()}", verified=True)
    # ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]; BADSIG <keyid> <user id>
    errsig, badsig = status.get("ERRSIG"), status.get("BADSIG")
    if errsig:
        key = (errsig[6] if len(errsig) > 6 and errsig[6] != "-" else errsig[0]).upper()
        reason = "its public key is not in the gpg_keyring" if "NO_PUBKEY" in status else "gpg cannot check it"
        return SignedBy(frozenset({key}), f"GPG key {key}", reason=reason)
    key = badsig[0].upper() if badsig else "unknown"
    return SignedBy(frozenset({key}), f"GPG key {key}", reason="bad GPG signature")
