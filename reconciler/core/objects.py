"""The platform objects the core renders from Git and the providers read live: one shape for both.

``render`` turns a desired state into these; a platform provider's ``read`` returns them; ``drift``
compares the two. Object kinds and their fields (every value JSON-able; secrets as ``Sensitive``):

==================  =====================================  ============================================
kind                name                                   fields
==================  =====================================  ============================================
environment         the environment name                   description, color
folder              folder name                            (none)
resource            resource name                          type, description, folder, options (dict)
config-variable     variable name                          description, secret (bool), value
group               group name                             description; members (emails, sorted) and
                                                           Retool's privilege fields, each only when
                                                           declared (``OPTIONAL_FIELDS``)
space               Space name                             domain, admins (emails, sorted)
permission          ``<group>/<object_type>/<object>``     group, object_type (resource|app|folder),
                                                           object, access (use|edit|own)
app                 app name                               description, folder, source_hash,
                                                           resources (list), config (list)
==================  =====================================  ============================================

A field in ``OPTIONAL_FIELDS`` is compared only when the declaration carries it: a group whose
members or privileges are not declared leaves them as they are (a provider reads them all).

A resource's ``options`` are the shared options merged with this environment's options. Groups,
folders and resource definitions are shared by every environment on a platform such as Retool; the
per-environment parts (resource options, config values, permissions on resource configurations,
deployed apps) are what make one environment differ from another; which environment applies
the shared parts on an instance hosting several is ``topology``'s decision. A live object also says
whether the reconciler owns it (``owned``: created or adopted it); prune never deletes one it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("environment", "space", "folder", "resource", "config-variable", "group", "permission", "app")

# Fields compared only when declared: managing them is opt-in (membership, privileges).
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {
    "group": frozenset({
        "members", "universal_app_access", "universal_resource_access", "universal_workflow_access",
        "universal_query_library_access", "user_list_access", "audit_log_access", "unpublished_release_access",
        "usage_analytics_access", "theme_access", "account_details_access",
    }),
}

ObjectKey = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class PlatformObject:
    kind: str
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    # Live objects only: False for an object the reconciler neither created nor adopted (never pruned).
    owned: bool = field(default=True, compare=False)

    @property
    def key(self) -> ObjectKey:
        return (self.kind, self.name)


LiveState = dict[ObjectKey, PlatformObject]
