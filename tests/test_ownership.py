"""Who may release production (``allowed_signers``) and who may approve destructive changes
(``approvers``), with real GPG- and SSH-signed tags (issue 13): each refusal leaves the environment
unchanged and the CLI prints the reason naming the signer; a tag signed by an allowed key passes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.desired.models import signer_id
from tests.conftest import EXAMPLE, World, cli, git
from tests.test_promotion import production, release_staging
from tests.test_signatures import export_keyring, make_gpg_key, needs_gpg
from tests.test_validate import edit, problems

PRODUCTION = "environments/production.yaml"
DATABASE = "databases/crm.yaml"


def ssh_key(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A new SSH key: its private key file and its public key line."""
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, (tmp_path / f"{name}.pub").read_text().strip()


def gpg_key(home: Path, email: str) -> str:
    """A new GPG signing key in ``home`` (as test_signatures makes them); its 40-digit fingerprint."""
    make_gpg_key(home, email)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--fingerprint", email],
                             env={**os.environ, "GNUPGHOME": str(home)}, check=True, capture_output=True,
                             text=True).stdout
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))


def ssh_tag(world: World, key: Path, name: str, message: str) -> None:
    git(world.repo, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", name, "-m", message)


def gpg_tag(world: World, home: Path, key: str, name: str, message: str) -> None:
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["git", "-C", str(world.repo), "-c", f"user.signingkey={key}", "-c", "gpg.format=openpgp",
                    "-c", "user.name=Release", "-c", "user.email=release@example.com",
                    "tag", "-s", name, "-m", message], env=env, check=True, capture_output=True)


def declare(world: World, relative: str, text: str) -> None:
    """Append ``text`` (YAML lines) to a document on main, commit, and let staging verify it."""
    world.write(relative, (world.desired / relative).read_text() + text)
    world.commit(f"Ownership in {relative}")
    release_staging(world)


def yaml_list(key: str, entries: list[str]) -> str:
    return f"{key}:\n" + "".join(f"  - {json.dumps(e)}\n" for e in entries)


def assert_refused(world: World, reason: str, applied_ref: str | None) -> None:
    result = cli(world, "apply", "production")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert reason in " ".join(result.stderr.split())
    status = production(world)
    assert status["state"] == "Blocked"
    assert status["applied_ref"] == applied_ref
    history = json.loads(cli(world, "history", "production", "--format", "json").stdout)["runs"]
    assert history[0]["result"] == "Blocked"
    assert reason in " ".join(history[0]["reason"].split())
    assert history[0]["applied"] == []


# -- allowed_signers ---------------------------------------------------------------------------------


def test_only_a_tag_signed_by_an_allowed_ssh_key_releases_production(tmp_path: Path, pyworld: World) -> None:
    world = pyworld
    release_key, release_pub = ssh_key(tmp_path, "release")
    stranger_key, stranger_pub = ssh_key(tmp_path, "stranger")
    declare(world, PRODUCTION, yaml_list("allowed_signers", [release_pub]))

    world.tag("v1.0.0", "Release 1.0.0 (unsigned)")
    assert_refused(world, "tag v1.0.0: the tag is not signed", None)
    assert world.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]

    ssh_tag(world, stranger_key, "v1.0.1", "Release 1.0.1")
    assert_refused(world, f"tag v1.0.1 signed by a key not allowed to release production: SSH key "
                   f"{signer_id(stranger_pub)}", None)
    assert world.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]

    ssh_tag(world, release_key, "v1.0.2", "Release 1.0.2")
    result = cli(world, "apply", "production")
    assert result.exit_code == 0, result.stderr
    assert production(world)["applied_ref"] == "v1.0.2"
    assert "customers" in {str(r[0]) for r in world.query(
        "production", "select tablename from pg_tables where schemaname = 'public'")}


@needs_gpg
def test_only_a_tag_signed_by_an_allowed_gpg_key_releases_production(tmp_path: Path, pyworld: World) -> None:
    world = pyworld
    release = gpg_key(tmp_path / "gpg-release", "release@example.com")
    stranger = gpg_key(tmp_path / "gpg-stranger", "stranger@example.com")
    # The keyring verifies both keys: the stranger's signature is good, just not allowed.
    keyring = tmp_path / "keyring.gpg"
    export_keyring(tmp_path / "gpg-release", release, tmp_path / "release.gpg")
    export_keyring(tmp_path / "gpg-stranger", stranger, tmp_path / "stranger.gpg")
    keyring.write_bytes((tmp_path / "release.gpg").read_bytes() + (tmp_path / "stranger.gpg").read_bytes())
    text = (world.desired / PRODUCTION).read_text().replace(
        "  prereleases: false\n", f"  prereleases: false\n  verify_signatures: {{gpg_keyring: {keyring}}}\n")
    world.write(PRODUCTION, text)
    declare(world, PRODUCTION, yaml_list("allowed_signers", [release]))

    gpg_tag(world, tmp_path / "gpg-stranger", stranger, "v1.0.0", "Release 1.0.0")
    assert_refused(world, f"tag v1.0.0 signed by a key not allowed to release production: GPG key {stranger}",
                   None)
    assert world.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]

    gpg_tag(world, tmp_path / "gpg-release", release, "v1.0.1", "Release 1.0.1")
    result = cli(world, "apply", "production")
    assert result.exit_code == 0, result.stderr
    assert production(world)["applied_ref"] == "v1.0.1"


# -- approvers ---------------------------------------------------------------------------------------


APPROVE = "Release 1.1.0\n\nApprove: crm:drop-column:public.customers.plan\n"


@pytest.fixture
def dropping(pyworld: World) -> World:
    """production at v1.0.0; main then drops customers.plan and staging follows."""
    world = pyworld
    release_staging(world)
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    sql = world.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    world.commit("Drop customers.plan")
    release_staging(world)
    return world


def test_an_approval_counts_only_in_a_tag_signed_by_a_database_approver_ssh(tmp_path: Path,
                                                                           dropping: World) -> None:
    world = dropping
    approver_key, approver_pub = ssh_key(tmp_path, "dba")
    other_key, other_pub = ssh_key(tmp_path, "developer")
    declare(world, DATABASE, yaml_list("approvers", [approver_pub]))

    world.tag("v1.1.0", APPROVE)
    assert_refused(world, "approval of crm:drop-column:public.customers.plan in tag v1.1.0 refused: the tag is "
                   "not signed", "v1.0.0")
    assert "plan" in world.columns("production", "customers")

    ssh_tag(world, other_key, "v1.1.1", APPROVE)
    assert_refused(world, "approval of crm:drop-column:public.customers.plan in tag v1.1.1 refused: signed by "
                   f"SSH key {signer_id(other_pub)}; only an approver of database crm can approve it", "v1.0.0")
    assert "plan" in world.columns("production", "customers")

    ssh_tag(world, approver_key, "v1.1.2", APPROVE)
    result = cli(world, "apply", "production")
    assert result.exit_code == 0, result.stderr
    assert "plan" not in world.columns("production", "customers")
    assert production(world)["applied_ref"] == "v1.1.2"


@needs_gpg
def test_an_approval_counts_only_in_a_tag_signed_by_an_environment_approver_gpg(tmp_path: Path,
                                                                               dropping: World) -> None:
    world = dropping
    approver = gpg_key(tmp_path / "gpg-dba", "dba@example.com")
    other = gpg_key(tmp_path / "gpg-dev", "dev@example.com")
    # verify_signatures is on, so the keyring trusts both keys (else the developer's tag is refused
    # before any approval is looked at): the developer's signature is good, just not an approver's.
    keyring = tmp_path / "keyring.gpg"
    export_keyring(tmp_path / "gpg-dba", approver, tmp_path / "dba.gpg")
    export_keyring(tmp_path / "gpg-dev", other, tmp_path / "dev.gpg")
    keyring.write_bytes((tmp_path / "dba.gpg").read_bytes() + (tmp_path / "dev.gpg").read_bytes())
    text = (world.desired / PRODUCTION).read_text().replace(
        "  prereleases: false\n", f"  prereleases: false\n  verify_signatures: {{gpg_keyring: {keyring}}}\n")
    world.write(PRODUCTION, text)
    declare(world, PRODUCTION, yaml_list("approvers", [approver]))

    gpg_tag(world, tmp_path / "gpg-dev", other, "v1.1.0", APPROVE)
    assert_refused(world, "approval of crm:drop-column:public.customers.plan in tag v1.1.0 refused: signed by "
                   f"GPG key {other}; only an approver of environment production can approve it", "v1.0.0")
    assert "plan" in world.columns("production", "customers")

    gpg_tag(world, tmp_path / "gpg-dba", approver, "v1.1.1", APPROVE)
    result = cli(world, "apply", "production")
    assert result.exit_code == 0, result.stderr
    assert "plan" not in world.columns("production", "customers")


def test_a_tag_cannot_name_its_own_approvers(tmp_path: Path, dropping: World) -> None:
    """Approvers come from the control branch head, not from the tag's own desired state."""
    world = dropping
    _, approver_pub = ssh_key(tmp_path, "dba")
    other_key, other_pub = ssh_key(tmp_path, "developer")
    declare(world, DATABASE, yaml_list("approvers", [approver_pub]))
    listed = (world.desired / DATABASE).read_text()
    declare(world, DATABASE, f"  - {json.dumps(other_pub)}\n")  # the developer lists themself...
    ssh_tag(world, other_key, "v1.1.0", APPROVE)  # ...and signs a release of exactly that commit
    world.write(DATABASE, listed)
    world.commit("Only the DBA approves")  # main no longer lists the developer
    assert_refused(world, f"signed by SSH key {signer_id(other_pub)}; only an approver of database crm", "v1.0.0")
    assert "plan" in world.columns("production", "customers")


def test_the_operators_approve_flag_still_approves(tmp_path: Path, dropping: World) -> None:
    world = dropping
    _, approver_pub = ssh_key(tmp_path, "dba")
    declare(world, DATABASE, yaml_list("approvers", [approver_pub]))
    world.tag("v1.1.0", "Release 1.1.0")
    result = cli(world, "apply", "production", "--approve", "crm:drop-column:*")
    assert result.exit_code == 0, result.stderr
    assert "plan" not in world.columns("production", "customers")


# -- validation --------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


def test_malformed_keys_are_reported_with_file_and_line(folder: Path) -> None:
    edit(folder, PRODUCTION, "access:\n",
         'allowed_signers:\n  - "ssh-ed25519 AAAAnotakey"\n  - "0123456789ABCDEF"\naccess:\n')
    edit(folder, DATABASE, "managed_schemas: [public]\n", "managed_schemas: [public]\napprovers: [hello]\n")
    found = problems(folder)
    assert any(p.startswith(f"{PRODUCTION}:") and "is not base64" in p for p in found), found
    assert any(p.startswith(f"{PRODUCTION}:") and "short GPG key id" in p for p in found), found
    assert any(p.startswith(f"{DATABASE}:") and "'hello' is neither a GPG fingerprint" in p for p in found), found


def test_gpg_signers_need_a_keyring(folder: Path) -> None:
    edit(folder, PRODUCTION, "access:\n", f"allowed_signers: [{'AB' * 20}]\naccess:\n")
    found = problems(folder)
    assert any(p.startswith(f"{PRODUCTION}:") and "set track.verify_signatures.gpg_keyring" in p
               for p in found), found


def test_cli_validate_prints_the_malformed_key(folder: Path) -> None:
    edit(folder, DATABASE, "managed_schemas: [public]\n", "managed_schemas: [public]\napprovers: [hello]\n")
    result = cli(None, "validate", str(folder))
    assert result.exit_code != 0
    assert f"{DATABASE}:" in result.stderr + result.stdout
    assert "'hello' is neither a GPG fingerprint" in result.stderr + result.stdout


def test_keys_are_matched_by_fingerprint_whatever_their_spelling() -> None:
    assert signer_id("ab" * 20) == "AB" * 20
    assert signer_id(" ".join(["ABCD"] * 10)) == "ABCD" * 10
    with pytest.raises(ValueError, match="short GPG key id"):
        signer_id("0123456789ABCDEF")



# -- the decisions alone (core/gates.py) ---------------------------------------------------------------


def test_which_approvers_an_item_needs_and_whose_signature_counts(tmp_path: Path) -> None:
    from reconciler.core.changes import Change, DriftItem, Risk
    from reconciler.core.gates import GateCode, SignedBy, TagApprovals, check_destructive
    from reconciler.desired.models import Environment

    _, dba = ssh_key(tmp_path, "dba")
    _, lead = ssh_key(tmp_path, "lead")
    spec = Environment.model_validate({"kind": "Environment", "name": "production", "track": {"tag": "v*"},
                                       "approvers": [lead]})
    column = DriftItem("crm:drop-column:public.t.c", "schema", "crm", "public.t.c", Change.DELETE, None, "text",
                       Risk.DESTRUCTIVE)
    other = DriftItem("ops:drop-table:public.x", "schema", "ops", "public.x", Change.DELETE, None, "x",
                      Risk.DESTRUCTIVE)

    def by(key: str, verified: bool = True) -> SignedBy:
        return SignedBy(frozenset({signer_id(key)}), f"SSH key {signer_id(key)}", verified, "" if verified else "bad")

    def gate(item: DriftItem, signed: SignedBy, given: tuple[str, ...] = ()) -> GateCode | None:
        tag = TagApprovals("v2.0.0", (item.id,), signed)
        return check_destructive(spec, [item], given, tag, {"crm": [dba]}).code

    assert gate(column, by(dba)) is None  # the database's own approver
    assert gate(column, by(lead)) == GateCode.APPROVER  # the database's approvers replace the environment's
    assert gate(other, by(lead)) is None  # a database without approvers: the environment's
    assert gate(other, by(dba)) == GateCode.APPROVER
    assert gate(column, by(dba, verified=False)) == GateCode.APPROVER  # a bad signature names no one
    assert gate(column, SignedBy()) == GateCode.APPROVER
    assert gate(column, SignedBy(), given=("crm:*",)) is None  # --approve is the operator's own
