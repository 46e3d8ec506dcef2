"""Replicas: several daemons on one shared state database split the work (SPEC §5, issue 14).

Called by the daemon's supervisor (``daemon/supervisor.py``), never by the CLI. Each daemon keeps
a membership lease (``@replica:…``) and competes for the leader lease (``@leader``), both renewed
every ``daemon.lease_ttl``/3 and expiring after ``lease_ttl``. The leader does the singleton duties
(polling the source, tag bookkeeping); when it sees the source move it posts a signal the others
read. Environments are spread over the live members by rendezvous hashing with bounded loads
(``assign``: no member gets more than its share, rounded up), so each is evaluated, drift-checked
and run by one daemon; the per-environment run lease still guarantees
one run at a time when two daemons' views of the members differ for a moment. When a member stops
renewing (SIGKILL, a lost node), its rows expire, the others see the member list change, and the
environments it owned hash to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass

from reconciler.errors import ReconcilerError
from reconciler.store.leases import LEADER, Leases, member_key
from reconciler.store.store import OWNER

SOURCE_MOVED = "source-moved"


def _rank(environment: str, members: tuple[str, ...] | list[str]) -> list[str]:
    """``members`` in the order ``environment`` prefers them: highest hash of (member, environment) first."""
    return sorted(members, key=lambda m: hashlib.sha256(f"{m}\0{environment}".encode()).digest(), reverse=True)


def assign(environments: list[str] | tuple[str, ...], members: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Which member runs each environment: the one it prefers (rendezvous hashing) that has room.

    Every member holds at most ``ceil(environments / members)``; plain rendezvous hashing can give
    one member half of them by chance. The result depends only on the two sets, so every replica
    that sees the same members and environments computes the same assignment; when a member leaves,
    mostly its environments move.
    """
    if not members:
        return {}
    cap = -(-len(set(environments)) // len(members))
    load = dict.fromkeys(members, 0)
    owners = {}
    for env in sorted(set(environments)):
        chosen = next(m for m in _rank(env, members) if load[m] < cap)
        load[chosen] += 1
        owners[env] = chosen
    return owners


@dataclass(frozen=True)
class Membership:
    """One look at the replicas: whether this daemon leads, and who is live (this daemon included)."""

    leader: bool
    members: tuple[str, ...]


class Replicas:
    def __init__(self, leases: Leases, ttl: float, owner: str = OWNER) -> None:
        self.leases = leases
        self.ttl = ttl
        self.owner = owner

    def renew(self) -> None:
        """Keep this daemon's membership row alive for another ``ttl``."""
        self.leases.acquire(member_key(self.owner), self.ttl, self.owner)

    def lead(self) -> bool:
        """Take or renew the leader lease; True when this daemon is the leader."""
        return self.leases.acquire(LEADER, self.ttl, self.owner)

    def look(self) -> tuple[Membership, str | None]:
        """Who is live, whether this daemon leads, and the last ``announce``d value: one read of the store."""
        members, leader, news = self.leases.look(LEADER, SOURCE_MOVED)
        if self.owner not in members:
            members = sorted([*members, self.owner])
        return Membership(leader=leader == self.owner, members=tuple(members)), news

    def announce(self, trigger: str) -> str:
        """Tell the other replicas the source moved (they fetch and evaluate, as for ``trigger``);
        return the value posted."""
        value = f"{uuid.uuid4().hex}:{trigger}"
        self.leases.post(SOURCE_MOVED, value)
        return value

    def leave(self) -> None:
        """Drop this daemon's rows at a clean stop, so the others take over at once."""
        for name in (LEADER, member_key(self.owner)):
            with contextlib.suppress(ReconcilerError):  # else the rows expire by themselves after lease_ttl
                self.leases.release(name, self.owner)
