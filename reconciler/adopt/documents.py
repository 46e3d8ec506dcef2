"""Live objects of each environment and dumped schemas → the files of a desired-state folder (pure).

Called by ``importer.run_import`` with what the providers read; returns file contents, the secret
names the documents reference and notes on what could not be expressed. The result renders back
to the live objects it came from (``engine/render.py`` is the inverse this follows), so ``plan``
right after an import shows no changes.

Rules, in the words ``reconciler import`` prints:

* **Secrets.** A value the platform stored as a secret reference (the registry keeps the
  template, never the value) is written as that template. A value the platform does not show
  (Retool's ``---encrypted-on-server---``), a literal under a credential-like option key
  (``password``, ``token``, ``authorization``, ...), a URL holding a password and every value of a
  secret config variable become ``${secret:NAME}``, with deterministic names: owner, option path
  and environment, upper-cased (``CRM_DB_PASSWORD_STAGING``); a literal that is equal in every
  environment gets one name without the environment (``CRM_DB_PASSWORD``). An ``Authorization``
  value keeps its scheme (``Bearer ${secret:...}``). No value is ever written or returned.
* **Per environment.** A resource option equal in every environment the resource exists in is
  written once in ``options``; the others go to ``environments.<env>.options``. A config value
  shared by the most environments becomes ``default`` when the variable exists everywhere.
* **One value for all.** Fields the format holds once (a resource's type, description and folder,
  a variable's description and secret flag, a group's description, an app's fields and access)
  take the value of the most protected environment (the last in promotion order) when
  environments differ, and a note says so.
* **Not expressible.** Permissions on folders, per-resource grants that are not the same for every
  resource of an environment, folders no resource or app uses, names the format refuses: each is
  left out with a note (the next plan reports it as drift; nothing is pruned unless asked).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pydantic
import yaml

from reconciler.core.objects import LiveState, PlatformObject
from reconciler.desired.loader import PATTERN_RULES
from reconciler.desired.models import DEFAULT, KIND_MODELS, SECRET_REFERENCE
from reconciler.desired.validation import SECRET_OPTION_KEYS, normalise
from reconciler.secrets.values import SCHEME, Sensitive, looks_secret, to_storable

HEADER = "# Written by 'reconciler import' from what runs in {envs}. Review it, then commit it.\n"
ENVIRONMENT_HEADER = (
    "# 'track' and 'sync' are not platform state: the import chose safe defaults (no pruning,\n"
    "# destructive changes need approval). Adjust them to how this environment is promoted.\n"
)
PLACEHOLDER = "README.md"
_MISSING: Any = object()


@dataclass(frozen=True)
class LiveEnvironment:
    """What one environment runs: its platform objects and the files of its deployed apps."""

    name: str
    objects: LiveState
    # App name → its files as the platform keeps them; None when the platform does not give them.
    app_files: Mapping[str, Mapping[str, bytes] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveDatabase:
    """A managed database: its schemas under management and a dump of them per environment."""

    name: str
    managed_schemas: tuple[str, ...]
    dumps: Mapping[str, str]  # environment → SQL


@dataclass
class Imported:
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the folder → content
    secrets: dict[str, list[str]] = field(default_factory=dict)  # secret name → where it is used
    notes: list[str] = field(default_factory=list)
    documents: int = 0


def secret_name(*parts: str | None) -> str:
    """A deterministic secret name from its owner, option path and environment."""
    text = "_".join(p for p in parts if p)
    name = re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") or "SECRET"
    return name if not name[0].isdigit() else "S_" + name


def database_url_secret(database: str, env: str) -> str:
    """The secret that holds a managed database's URL in ``env``: read by the import, referenced after it."""
    return secret_name(database, "DATABASE_URL", env)


def _secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    if lowered in SECRET_OPTION_KEYS:
        return True
    return looks_secret(key)


def _holds_password(text: str) -> bool:
    try:
        return "://" in text and bool(urlsplit(text).password)
    except ValueError:
        return False


def _reference(value: Any) -> bool:
    """A secret the platform keeps as its reference (the registry); other Sensitives are hidden values."""
    return isinstance(value, Sensitive) and SECRET_REFERENCE.search(value.template) is not None


def _known(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(_known(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_known(v) for v in value)
    return _reference(value) or value is None or isinstance(value, str | bool | int | float)


def _canonical(value: Any) -> str | None:
    """A comparable form of a live value; None for values that cannot be compared (hidden ones)."""
    return json.dumps(to_storable(value), sort_keys=True) if _known(value) else None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _SecretBook:
    """Names handed out, the option each stands for, and where each is used."""

    def __init__(self) -> None:
        self.uses: dict[str, list[str]] = {}
        self.created: list[str] = []  # names for values the platform held hidden or in clear
        self._owners: dict[str, tuple[str, ...]] = {}

    def use(self, template: str, where: str) -> None:
        for name in SECRET_REFERENCE.findall(template):
            places = self.uses.setdefault(name, [])
            if where not in places:
                places.append(where)

    def new(self, identity: tuple[str, ...], where: str) -> str:
        base = secret_name(*identity)
        name, counter = base, 2
        while self._owners.get(name, identity) != identity:
            name, counter = f"{base}_{counter}", counter + 1
        if name not in self._owners:
            self.created.append(name)
        self._owners[name] = identity
        self.use(f"${{secret:{name}}}", where)
        return name


class _Builder:
    def __init__(self, environments: Sequence[LiveEnvironment], branch: str) -> None:
        self.live = list(environments)
        self.envs = [e.name for e in environments]
        self.branch = branch
        self.secrets = _SecretBook()
        self.notes: list[str] = []
        self.docs: dict[str, list[dict[str, Any]]] = {}
        self.extra: dict[str, bytes] = {}
        self.declared: dict[str, dict[str, list[str]]] = {}  # kind → name → environments

    # -- helpers ------------------------------------------------------------------------------------

    def objects(self, kind: str) -> dict[str, dict[str, PlatformObject]]:
        """Name → environment → object, for one kind, names sorted."""
        found: dict[str, dict[str, PlatformObject]] = {}
        for live in self.live:
            for (obj_kind, name), obj in live.objects.items():
                if obj_kind == kind:
                    found.setdefault(name, {})[live.name] = obj
        return dict(sorted(found.items()))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def pick(self, what: str, per_env: Mapping[str, Any]) -> Any:
        """The one value of a field held once: the most protected environment's when they differ."""
        values = list(per_env.values())
        if len({_canonical(v) for v in values}) <= 1 and _canonical(values[0]) is not None:
            return values[0]
        last = list(per_env)[-1]
        shown = ", ".join(f"{env}: {_shown(v)}" for env, v in per_env.items())
        self.note(f"{what} differs between environments ({shown}); the format holds one value, so {last}'s "
                  "was written and the others will plan as an update")
        return per_env[last]

    def add(self, path: str, document: dict[str, Any], kind: str, environments: list[str]) -> bool:
        """Keep ``document`` if its kind's model accepts it; otherwise say why and leave it out."""
        try:
            KIND_MODELS[kind].model_validate(document)
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            rule = PATTERN_RULES.get(str(first.get("ctx", {}).get("pattern")), first["msg"])
            self.note(f"{kind} {document.get('name')!r} left out: {where}: {rule} "
                      "(rename it in the platform, then import again)")
            return False
        self.docs.setdefault(path, []).append(document)
        self.declared.setdefault(kind, {})[str(document["name"])] = environments
        return True

    def convert(self, value: Any, owner: tuple[str, ...], env: str | None, secret: bool, where: str) -> Any:
        """A live value as declared: secret values become ``${secret:NAME}`` references."""
        if _reference(value):
            self.secrets.use(value.template, where)
            return value.template
        if isinstance(value, Mapping):
            return {str(k): self.convert(v, (*owner, str(k)), env, secret or _secret_key(str(k)), where)
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.convert(v, (*owner, str(i)) if len(value) > 1 else owner, env, secret, where)
                    for i, v in enumerate(value)]
        if isinstance(value, str):
            if not value or not (secret or _holds_password(value)):
                if "${" in value:
                    self.note(f"{where}: the value {_shown(value)} holds '${{', which the desired state reads "
                              "as a reference; edit it")
                return value
            scheme = SCHEME.fullmatch(value)
            name = self.secrets.new((*owner, env or ""), where)
            return f"{scheme.group(1)} ${{secret:{name}}}" if scheme else f"${{secret:{name}}}"
        if value is None or isinstance(value, bool | int | float):
            return value
        # Anything else is a value the platform does not show (Retool's masked secrets, read as a
        # Sensitive without a reference): only a secret reference can declare it.
        return f"${{secret:{self.secrets.new((*owner, env or ''), where)}}}"

    def per_environment(
        self, owner: tuple[str, ...], per_env: Mapping[str, Any], secret: bool, file: str
    ) -> tuple[Any, dict[str, Any]]:
        """One live value per environment → (the value all share or _MISSING, the per-environment rest)."""
        envs = list(per_env)
        raws = list(per_env.values())
        known = {_canonical(r) for r in raws}
        if len(envs) > 1 and len(known) == 1 and None not in known:
            return self.convert(raws[0], owner, None, secret, file), {}
        converted = {env: self.convert(raw, owner, env, secret, f"{file} ({env})") for env, raw in per_env.items()}
        if len({_canonical(v) for v in converted.values()}) == 1:
            return converted[envs[0]], {}
        return _MISSING, converted

    # -- kinds --------------------------------------------------------------------------------------

    def environments(self, access: Mapping[str, dict[str, list[str]]]) -> None:
        live = self.objects("environment")
        for index, env in enumerate(self.envs):
            fields = dict(live[env][env].fields) if env in live.get(env, {}) else None
            if fields is None:
                self.note(f"environment {env} was not found on the platform; its declaration will plan as a create")
                fields = {}
            track: dict[str, Any] = {"branch": self.branch}
            if index > 0:
                track = {"tag": "v*", "from_branch": self.branch, "promoted_from": self.envs[index - 1]}
            doc: dict[str, Any] = {"kind": "Environment", "name": env}
            if fields.get("description"):
                doc["description"] = fields["description"]
            color = fields.get("color")
            if color and re.fullmatch(r"#[0-9A-Fa-f]{6}", str(color)):
                doc["color"] = color
            elif color:
                self.note(f"environment {env}: colour {color!r} is not '#' and six hex digits; left out")
            doc["track"] = track
            doc["sync"] = {"automatic": True, "self_heal": False, "prune": False,
                           "destructive_changes": "require-approval"}
            groups = access.get(env, {})
            if groups.get("edit") or groups.get("use"):
                doc["access"] = {k: v for k, v in (("edit", groups.get("edit")), ("use", groups.get("use"))) if v}
            self.add(f"environments/{env}.yaml", doc, "Environment", [env])

    def resources(self) -> None:
        for name, per_env in self.objects("resource").items():
            file = f"resources/{name}.yaml"
            present = list(per_env)
            fields = {env: dict(obj.fields) for env, obj in per_env.items()}
            kind = self.pick(f"resource {name}: type", {e: f.get("type") for e, f in fields.items()})
            doc: dict[str, Any] = {"kind": "Resource", "name": name, "type": kind}
            description = self.pick(f"resource {name}: description",
                                    {e: f.get("description") or "" for e, f in fields.items()})
            if description:
                doc["description"] = description
            folder = self.pick(f"resource {name}: folder", {e: f.get("folder") for e, f in fields.items()})
            if folder:
                doc["folder"] = folder
            options = {env: dict(f.get("options") or {}) for env, f in fields.items()}
            keys: list[str] = []
            for env_options in options.values():
                keys += [k for k in env_options if k not in keys]
            shared: dict[str, Any] = {}
            own: dict[str, dict[str, Any]] = {env: {} for env in present}
            for key in keys:
                values = {env: options[env].get(key, _MISSING) for env in present}
                everywhere = {env: v for env, v in values.items() if v is not _MISSING}
                common, rest = self.per_environment((name, key), everywhere, _secret_key(key), file)
                if common is not _MISSING and len(everywhere) == len(present):
                    shared[key] = common
                elif common is not _MISSING:
                    for env in everywhere:
                        own[env][key] = common
                else:
                    for env, value in rest.items():
                        own[env][key] = value
            if shared:
                doc["options"] = shared
            if present != self.envs or any(own.values()):
                doc["environments"] = {env: ({"options": own[env]} if own[env] else {}) for env in present}
            self.add(file, doc, "Resource", present)

    def config_variables(self) -> None:
        for name, per_env in self.objects("config-variable").items():
            file = "config/variables.yaml"
            fields = {env: dict(obj.fields) for env, obj in per_env.items()}
            secret = bool(self.pick(f"config variable {name}: secret",
                                    {e: bool(f.get("secret")) for e, f in fields.items()}))
            description = self.pick(f"config variable {name}: description",
                                    {e: f.get("description") or "" for e, f in fields.items()})
            # Values are text; a platform that hands back a number or a flag gets it as text.
            raw = {env: str(f["value"]) if isinstance(f.get("value"), bool | int | float) else f.get("value")
                   for env, f in fields.items() if f.get("value") is not None}
            if not raw:
                continue
            common, rest = self.per_environment((name,), raw, secret, f"{file} {name}")
            per_value = {env: common for env in raw} if common is not _MISSING else rest
            values: dict[str, Any] = {}
            counts = Counter(_canonical(v) for v in per_value.values())
            top = max(counts.values())
            if list(per_value) == self.envs and top > 1:
                # A value several environments share is written once, as the default. A value of one
                # environment is not: a default would also reach environments added later.
                default_env = next(env for env in self.envs if counts[_canonical(per_value[env])] == top)
                values[DEFAULT] = per_value[default_env]
                values.update({env: v for env, v in per_value.items() if _canonical(v) != _canonical(values[DEFAULT])})
            else:
                values.update(per_value)
            doc: dict[str, Any] = {"kind": "ConfigVariable", "name": name}
            if description:
                doc["description"] = description
            doc["secret"] = secret
            doc["values"] = values
            self.add(file, doc, "ConfigVariable", list(raw))

    def groups(self) -> None:
        for name, per_env in self.objects("group").items():
            doc: dict[str, Any] = {"kind": "Group", "name": name}
            description = self.pick(f"group {name}: description",
                                    {e: o.fields.get("description") or "" for e, o in per_env.items()})
            if description:
                doc["description"] = description
            missing = [env for env in self.envs if env not in per_env]
            if missing:
                self.note(f"group {name} does not exist in {', '.join(missing)}; declared groups exist in every "
                          "environment, so it will plan as a create there")
            self.add("groups.yaml", doc, "Group", list(per_env))

    def permissions(self) -> tuple[dict[str, dict[str, list[str]]], dict[str, dict[str, dict[str, list[str]]]]]:
        """Environment access (group lists per environment) and app access (per app, per environment)."""
        groups = self.declared.get("Group", {})
        resources = self.declared.get("Resource", {})
        env_access: dict[str, dict[str, list[str]]] = {}
        app_access: dict[str, dict[str, dict[str, list[str]]]] = {}
        for live in self.live:
            env = live.name
            grants: dict[str, dict[str, str]] = {}  # group → resource → access
            for obj in live.objects.values():
                if obj.kind != "permission":
                    continue
                f = obj.fields
                group, object_type, target, level = (str(f.get("group")), f.get("object_type"), str(f.get("object")),
                                                     str(f.get("access")))
                if group not in groups:
                    self.note(f"permission {obj.name} ({env}) left out: group {group} is not declared")
                elif object_type == "resource" and target in resources and env in resources[target]:
                    grants.setdefault(group, {})[target] = level
                elif object_type == "app" and level in ("use", "edit"):
                    lists = app_access.setdefault(target, {}).setdefault(env, {"use": [], "edit": []})
                    lists[level].append(group)
                else:
                    self.note(f"permission {obj.name} ({env}) left out: the format has no place for "
                              f"{level} access on a {object_type}")
            here = [r for r, envs in resources.items() if env in envs]
            access: dict[str, list[str]] = {"edit": [], "use": []}
            for group, by_resource in sorted(grants.items()):
                kinds = {by_resource.get(r, "") for r in here}
                if len(kinds) == 1 and kinds <= {"use", "edit"}:
                    access[kinds.pop()].append(group)
                else:
                    self.note(f"{env}: group {group} has different access to different resources "
                              f"({', '.join(f'{r}: {a}' for r, a in sorted(by_resource.items()))}); environment "
                              "access is the same for every resource, so these grants were left out")
            env_access[env] = access
        return env_access, app_access

    def apps(
        self,
        app_access: Mapping[str, Mapping[str, dict[str, list[str]]]],
        files: Mapping[str, Mapping[str, Mapping[str, bytes] | None]],
    ) -> None:
        resources = self.declared.get("Resource", {})
        variables = self.declared.get("ConfigVariable", {})
        groups = self.declared.get("Group", {})
        for name, per_env in self.objects("app").items():
            present = list(per_env)
            fields = {env: dict(obj.fields) for env, obj in per_env.items()}
            folder_path = f"apps/{name}"
            doc: dict[str, Any] = {"kind": "App", "name": name}
            description = self.pick(f"app {name}: description",
                                    {e: f.get("description") or "" for e, f in fields.items()})
            if description:
                doc["description"] = description
            folder = self.pick(f"app {name}: folder", {e: f.get("folder") for e, f in fields.items()})
            if folder:
                doc["folder"] = folder
            doc["source"] = folder_path
            if present != self.envs:
                doc["environments"] = present
            used = self.pick(f"app {name}: resources", {e: sorted(f.get("resources") or []) for e, f in fields.items()})
            kept = [r for r in used if r in resources and all(e in resources[r] for e in present)]
            if kept != used:
                self.note(f"app {name}: resources {', '.join(r for r in used if r not in kept)} left out (not "
                          f"declared in every environment of the app)")
            doc["resources"] = kept
            config = self.pick(f"app {name}: config", {e: sorted(f.get("config") or []) for e, f in fields.items()})
            kept_config = [c for c in config if c in variables and all(e in variables[c] for e in present)]
            if kept_config != config:
                self.note(f"app {name}: config {', '.join(c for c in config if c not in kept_config)} left out (no "
                          f"value in every environment of the app)")
            doc["config"] = kept_config
            access = self.pick(f"app {name}: access", {
                env: {k: sorted(g for g in v if g in groups) for k, v in
                      app_access.get(name, {}).get(env, {"use": [], "edit": []}).items()} for env in present})
            if access.get("use") or access.get("edit"):
                doc["access"] = {k: access[k] for k in ("use", "edit") if access.get(k)}
            if not self.add(f"apps/{name}.yaml", doc, "App", present):
                continue
            hashes = {env: f.get("source_hash") for env, f in fields.items()}
            source_env = present[-1]
            if len(set(hashes.values())) > 1:
                releases = ", ".join(f"{env}: {str(digest)[:19]}" for env, digest in hashes.items())
                self.note(f"app {name} runs different releases ({releases}); {source_env}'s files were written "
                          "and the others will plan as an update")
            app_files = files.get(source_env, {}).get(name)
            written = self.app_source(name, folder_path, app_files)
            if not written:
                self.note(f"app {name}: the platform does not give its files; {folder_path}/{PLACEHOLDER} stands "
                          "in for them: put the app's files there (its source hash will plan as an update until then)")

    def app_source(self, name: str, folder: str, files: Mapping[str, bytes] | None) -> bool:
        if files:
            safe = {path: content for path, content in files.items() if normalise(path) == path}
            if len(safe) == len(files):
                for path, content in sorted(safe.items()):
                    self.extra[f"{folder}/{path}"] = content
                return True
            self.note(f"app {name}: the platform's files have paths outside the app's folder; none were written")
        self.extra[f"{folder}/{PLACEHOLDER}"] = (
            f"# {name}\n\nThe platform did not give this app's files to 'reconciler import'.\n"
            "Replace this file with the app's definition (for Retool, its Source Control files).\n"
        ).encode()
        return False

    def folders(self) -> None:
        used = {str(d.get("folder")) for path, docs in self.docs.items() for d in docs if d.get("folder")}
        for name, per_env in self.objects("folder").items():
            if name not in used:
                self.note(f"folder {name} ({', '.join(per_env)}) holds no imported resource or app; the format "
                          "declares folders through them, so it was left out")

    def databases(self, databases: Sequence[LiveDatabase]) -> None:
        for database in databases:
            folder = f"databases/{database.name}"
            doc: dict[str, Any] = {
                "kind": "Database", "name": database.name, "schema": folder,
                "managed_schemas": list(database.managed_schemas),
                "environments": {env: {"url": f"${{secret:{database_url_secret(database.name, env)}}}"}
                                 for env in database.dumps},
            }
            if not self.add(f"databases/{database.name}.yaml", doc, "Database", list(database.dumps)):
                continue
            for env in database.dumps:
                self.secrets.use(str(doc["environments"][env]["url"]), f"databases/{database.name}.yaml ({env})")
            envs = list(database.dumps)
            source = envs[-1]
            differ = [env for env in envs if database.dumps[env] != database.dumps[source]]
            if differ:
                self.note(f"database {database.name}: the schema in {', '.join(differ)} differs from {source}'s; "
                          f"{source}'s was written and {', '.join(differ)} will plan schema changes")
            self.extra[f"{folder}/schema.sql"] = (
                f"-- The schema of {database.name} ({', '.join(database.managed_schemas)}) as pg_dump showed it in "
                f"{source}, written by 'reconciler import'.\n\n" + database.dumps[source]
            ).encode()

    # -- output -------------------------------------------------------------------------------------

    def render(self) -> Imported:
        header = HEADER.format(envs=", ".join(self.envs))
        created = self.secrets.created
        if created:
            self.note(f"{len(created)} secret value{'s' if len(created) != 1 else ''} the platform hides or shows "
                      f"in clear became new references ({', '.join(sorted(created))}): secrets are compared by what "
                      "the reconciler wrote, so the first plan shows each as an update and the first apply writes "
                      "the values you provide")
        out = Imported(secrets=dict(sorted(self.secrets.uses.items())), notes=list(self.notes))
        out.files["reconciler.yaml"] = (header + _dump({"version": 1, "environments": self.envs})).encode()
        for path, docs in sorted(self.docs.items()):
            text = header + (ENVIRONMENT_HEADER if path.startswith("environments/") else "")
            text += "---\n".join(_dump(doc) for doc in docs)
            out.files[path] = text.encode()
            out.documents += len(docs)
        out.files.update(self.extra)
        return out


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def build(
    environments: Sequence[LiveEnvironment], databases: Sequence[LiveDatabase] = (), branch: str = "main"
) -> Imported:
    """The desired-state files that declare what ``environments`` and ``databases`` run (see the module rules)."""
    builder = _Builder(environments, branch)
    builder.groups()
    builder.resources()
    builder.config_variables()
    env_access, app_access = builder.permissions()
    builder.apps(app_access, {e.name: e.app_files for e in environments})
    builder.folders()
    builder.environments(env_access)
    builder.databases(databases)
    return builder.render()
