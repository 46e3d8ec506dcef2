"""Risk, drift id and safer rewrites for each schema statement, decided with a real parser.

``PostgresProvider.plan`` hands the engine's ``SchemaDiff`` to ``classify``, which returns the
``DriftItem``s of one database, in the engine's statement order. It is pure: no I/O.

Each statement is parsed with pglast (PostgreSQL's own grammar; migra's ``drop\\s+`` regex would
flag a harmless ``DROP DEFAULT``) and gets:

* a stable id ``<database>:<action>:<object>``, e.g. ``crm:drop-column:public.customers.notes``,
  ``crm:create-index:public.idx_customers_email``, ``crm:grant:public.customers/select/support``;
* a risk: ``destructive`` (data or an object apps use goes away: DROP TABLE/COLUMN/VIEW/
  FUNCTION/TYPE/SCHEMA/SEQUENCE/EXTENSION, lossy type changes, enum value removal), ``lock-risk``
  (blocks reads or writes while it runs: CREATE INDEX without CONCURRENTLY on an existing table,
  SET NOT NULL, volatile defaults, rewriting type changes, constraints validated under lock),
  ``data-dependent`` (may fail on existing rows: UNIQUE, NOT NULL, CHECK, FOREIGN KEY validation),
  or ``safe``;
* its phase: ``SCHEMA_DESTRUCTIVE`` for destructive statements and the statements grouped with
  them, ``SCHEMA_ADDITIVE`` otherwise; the items come in an order where none runs before one it
  depends on (``phases.py``).

Where a safer equivalent exists it is what the item carries: ``CREATE INDEX CONCURRENTLY`` run
outside the transaction for indexes on existing tables (and ``ADD CONSTRAINT ... USING INDEX``
after it), ``ADD CONSTRAINT ... NOT VALID`` in the transaction and ``VALIDATE CONSTRAINT``
after it, and ``ALTER TYPE ... ADD VALUE`` instead of migra's rename-recreate-recast dance when
enum values are only added. A drop and a create of the same object in one plan (migra's way of
changing a view, an index, a constraint, ...) are a replacement: both halves carry the risk of
the change, not of a drop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.errors import SchemaError
from reconciler.providers.postgres.diffing import SchemaDiff, SchemaFacts
from reconciler.providers.postgres.phases import Statement, arrange

KIND = "schema"
ENUM_OLD_SUFFIX = "__old_version_to_be_dropped"

_RISK_ORDER = (Risk.SAFE, Risk.DATA_DEPENDENT, Risk.LOCK_RISK, Risk.DESTRUCTIVE)

_OT = enums.ObjectType
_AT = enums.AlterTableType
_CT = enums.ConstrType

# DROP of these loses data or an object that applications call; DROP INDEX/TRIGGER/POLICY/RULE
# removes nothing a client reads, so it is not destructive.
_DESTRUCTIVE_DROPS = {
    _OT.OBJECT_TABLE: "table",
    _OT.OBJECT_VIEW: "view",
    _OT.OBJECT_MATVIEW: "materialized-view",
    _OT.OBJECT_SCHEMA: "schema",
    _OT.OBJECT_TYPE: "type",
    _OT.OBJECT_DOMAIN: "domain",
    _OT.OBJECT_FUNCTION: "function",
    _OT.OBJECT_PROCEDURE: "procedure",
    _OT.OBJECT_AGGREGATE: "aggregate",
    _OT.OBJECT_SEQUENCE: "sequence",
    _OT.OBJECT_EXTENSION: "extension",
    _OT.OBJECT_FOREIGN_TABLE: "foreign-table",
    _OT.OBJECT_COLLATION: "collation",
}
_HARMLESS_DROPS = {
    _OT.OBJECT_INDEX: "index",
    _OT.OBJECT_TRIGGER: "trigger",
    _OT.OBJECT_POLICY: "policy",
    _OT.OBJECT_RULE: "rule",
}
# Object kinds whose replacement (drop, then create again) still loses data.
_DATA_KINDS = {"table", "column", "sequence", "foreign-table"}

# Functions that are not volatile: a column added with such a default needs no table rewrite.
# Anything else (random(), clock_timestamp(), gen_random_uuid(), nextval(), user functions) is
# treated as volatile, which is the conservative choice.
_NON_VOLATILE = {
    "now", "transaction_timestamp", "statement_timestamp", "current_setting", "lower", "upper",
    "length", "char_length", "btrim", "ltrim", "rtrim", "trim", "concat", "concat_ws", "substr",
    "substring", "replace", "left", "right", "abs", "round", "floor", "ceil", "greatest", "least",
    "to_char", "to_date", "to_timestamp", "date_trunc", "make_date", "make_interval",
    "jsonb_build_object", "json_build_object", "jsonb_build_array", "json_build_array", "to_jsonb",
    "to_json", "array_length", "cardinality", "md5",
}

_TYPE_ALIASES = {
    "int": "integer", "int4": "integer", "int2": "smallint", "int8": "bigint",
    "float4": "real", "float8": "double precision", "bool": "boolean",
    "varchar": "character varying", "bpchar": "character", "char": "character",
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
    "timetz": "time with time zone", "time": "time without time zone", "decimal": "numeric",
}
_WIDENINGS = {  # old base type -> types it widens into (rewrite, no loss)
    "smallint": {"integer", "bigint", "numeric", "real", "double precision"},
    "integer": {"bigint", "numeric", "double precision"},
    "bigint": {"numeric"},
    "real": {"double precision"},
    "date": {"timestamp without time zone", "timestamp with time zone"},
    "timestamp without time zone": {"timestamp with time zone"},
    "timestamp with time zone": {"timestamp without time zone"},
    "json": {"jsonb"},
    "jsonb": {"json"},
    "character": {"character varying", "text"},
}
_TEXTUAL = {"text", "character varying"}
# Binary-coercible changes: PostgreSQL changes the catalog only.
_NO_REWRITE = {("character varying", "text"), ("text", "character varying"), ("cidr", "inet")}


@dataclass
class _Stmt:
    """One statement while it is being classified (mutable scratch state, never returned)."""

    index: int
    sql: str
    node: Any
    action: str
    obj: str
    change: Change
    risk: Risk
    declared: str | None = None
    live: str | None = None
    transactional: bool = True
    identity: tuple[str, str] | None = None  # (object kind, name) to pair drops with creates
    drop: bool = False
    table: str | None = None  # "schema.table" the statement works on, when there is one
    replaced: bool = False
    extra_sql: tuple[str, ...] = ()
    absorbed: bool = False  # merged into another item or superseded by a rewrite
    touches_extra: frozenset[str] = frozenset()  # relations it works on beyond ``table`` and ``obj``
    steps: tuple[str, ...] = ()  # statements apply runs one transaction each (non-transactional items)
    on_failure: str | None = None  # what apply runs when the item fails for a reason other than a lock


def classify(database: str, diff: SchemaDiff) -> list[DriftItem]:
    """Turn the engine's statements into classified, ordered drift items of ``database``."""
    facts = diff.facts
    stmts: list[_Stmt] = []
    for index, sql in enumerate(diff.statements):
        node = _parse_one(sql)
        if isinstance(node, ast.VariableSetStmt):
            # migra's ``set check_function_bodies = off``: apply sets it for every transaction.
            continue
        if isinstance(node, ast.SelectStmt) and _deparse(node) == "SELECT 1":
            # migra's placeholder for an index that goes away with its exclusion constraint.
            continue
        stmts.append(_describe(index, sql, node, facts))

    new_relations = {s.obj for s in stmts if s.action in {"create-table", "create-materialized-view"}}
    partitioned = set(facts.partitioned_tables) | {
        s.obj for s in stmts if s.action == "create-table" and s.node.partspec is not None
    }
    _partitioned_keys(stmts, partitioned)
    _pair_replacements(stmts)
    _enum_changes(stmts, facts)
    _constraint_validation(stmts, facts, new_relations)
    _concurrent_indexes(stmts, facts, new_relations)
    stmts = _not_null_through_a_check(stmts, facts, new_relations, partitioned)
    stmts = _domain_constraint_validation(stmts)
    return _items(database, [s for s in stmts if not s.absorbed], facts)


# --- parsing helpers -------------------------------------------------------------------------


def _parse_one(sql: str) -> Any:
    try:
        raw = parse_sql(sql)
    except ParseError as exc:
        raise SchemaError(f"the schema engine produced SQL that does not parse: {exc}: {sql[:200]}") from exc
    if len(raw) != 1:
        raise SchemaError(f"expected one statement from the schema engine, got {len(raw)}: {sql[:200]}")
    return raw[0].stmt


def _names(parts: Any) -> list[str]:
    return [str(p.sval) for p in parts or () if isinstance(p, ast.String)]


def _qualified(names: Sequence[str], default_schema: str = "public") -> str:
    return ".".join(names) if len(names) > 1 else f"{default_schema}.{names[0]}"


def _rangevar(rv: Any) -> str:  # a RangeVar
    return f"{rv.schemaname or 'public'}.{rv.relname}"


def _attr(node: Any, name: str) -> Any:
    """``node.name`` for pglast's optional fields, which the grammar guarantees in our statements."""
    return getattr(node, name)


def _deparse(node: Any) -> str:
    return str(RawStream()(node))


def _type_name(node: Any) -> str:
    return _deparse(node)


def _func_identity(name_parts: Sequence[str], params: Any, objargs: Any) -> str:
    if params is not None:
        modes = {enums.FunctionParameterMode.FUNC_PARAM_OUT, enums.FunctionParameterMode.FUNC_PARAM_TABLE}
        args = [_type_name(p.argType) for p in params if p.mode not in modes]
    else:
        args = [_type_name(a) for a in objargs or ()]
    return f"{_qualified(name_parts)}({','.join(args)})"


def _max_risk(*risks: Risk) -> Risk:
    return max(risks, key=_RISK_ORDER.index)


class _FunctionCalls(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        self.names.append(node.funcname[-1].sval.lower())


def _volatile(expr: Any) -> bool:
    calls = _FunctionCalls()
    calls(expr)
    return any(name not in _NON_VOLATILE for name in calls.names)


# --- one statement at a time -----------------------------------------------------------------


def _describe(index: int, sql: str, node: Any, facts: SchemaFacts) -> _Stmt:
    def stmt(action: str, obj: str, change: Change, risk: Risk = Risk.SAFE, **kw: Any) -> _Stmt:
        return _Stmt(index=index, sql=sql, node=node, action=action, obj=obj, change=change, risk=risk, **kw)

    if isinstance(node, ast.CreateStmt):
        name = _rangevar(node.relation)
        return stmt("create-table", name, Change.CREATE, declared="table", identity=("table", name),
                    table=name)
    if isinstance(node, ast.CreateTableAsStmt) and node.objtype == _OT.OBJECT_MATVIEW:
        name = _rangevar(_attr(node.into, "rel"))
        return stmt("create-materialized-view", name, Change.CREATE, declared="materialized view",
                    identity=("materialized-view", name))
    if isinstance(node, ast.ViewStmt):
        name = _rangevar(node.view)
        existed = name in facts.live_relations and name not in facts.live_tables  # a view, not a table
        return stmt("create-view", name, Change.UPDATE if existed else Change.CREATE,
                    declared="view", live="view" if existed else None, identity=("view", name))
    if isinstance(node, ast.IndexStmt):
        table = _rangevar(node.relation)
        name = f"{_attr(node.relation, 'schemaname') or 'public'}.{node.idxname}"
        kind = "unique index" if node.unique else "index"
        return stmt("create-index", name, Change.CREATE, declared=f"{kind} on {table}",
                    identity=("index", name), table=table)
    if isinstance(node, ast.CreateFunctionStmt):
        name = _func_identity(_names(node.funcname), node.parameters or (), None)
        kind = "procedure" if node.is_procedure else "function"
        existed = _qualified(_names(node.funcname)) in facts.live_functions
        return stmt(f"create-{kind}", name, Change.UPDATE if existed else Change.CREATE, declared=kind,
                    live=kind if existed else None, identity=(kind, name))
    if isinstance(node, ast.CreateTrigStmt):
        table = _rangevar(node.relation)
        name = f"{table}.{node.trigname}"
        return stmt("create-trigger", name, Change.CREATE, declared="trigger", identity=("trigger", name),
                    table=table)
    if isinstance(node, ast.CreatePolicyStmt):
        table = _rangevar(node.table)
        name = f"{table}.{node.policy_name}"
        return stmt("create-policy", name, Change.CREATE, declared=f"policy for {node.cmd_name}",
                    identity=("policy", name), table=table)
    if isinstance(node, ast.CreateExtensionStmt):
        return stmt("create-extension", str(node.extname), Change.CREATE, declared="extension",
                    identity=("extension", node.extname))
    if isinstance(node, ast.AlterExtensionStmt):
        return stmt("alter-extension", str(node.extname), Change.UPDATE, declared="other version")
    if isinstance(node, ast.CreateSchemaStmt):
        return stmt("create-schema", str(node.schemaname), Change.CREATE, declared="schema",
                    identity=("schema", node.schemaname))
    if isinstance(node, ast.CreateSeqStmt):
        name = _rangevar(node.sequence)
        return stmt("create-sequence", name, Change.CREATE, declared="sequence", identity=("sequence", name))
    if isinstance(node, ast.AlterSeqStmt):
        return stmt("alter-sequence", _rangevar(node.sequence), Change.UPDATE, declared="owned by column")
    if isinstance(node, ast.CreateEnumStmt):
        name = _qualified(_names(node.typeName))
        labels = [v.sval for v in node.vals or ()]
        return stmt("create-type", name, Change.CREATE, declared="enum (" + ", ".join(labels) + ")",
                    identity=("type", name))
    if isinstance(node, ast.CompositeTypeStmt):
        name = _rangevar(node.typevar)
        return stmt("create-type", name, Change.CREATE, declared="composite type", identity=("type", name))
    if isinstance(node, ast.CreateDomainStmt):
        name = _qualified(_names(node.domainname))
        return stmt("create-domain", name, Change.CREATE, declared=f"domain over {_type_name(node.typeName)}",
                    identity=("domain", name))
    if isinstance(node, ast.AlterDomainStmt):
        return _describe_alter_domain(stmt, node)
    if isinstance(node, ast.RenameStmt) and node.renameType == _OT.OBJECT_TYPE:
        name = _qualified(_names(node.object))
        return stmt("rename-type", name, Change.UPDATE, Risk.LOCK_RISK, declared=node.newname)
    if isinstance(node, ast.DropStmt):
        return _describe_drop(stmt, node)
    if isinstance(node, ast.AlterTableStmt):
        return _describe_alter_table(stmt, node, facts, sql)
    if isinstance(node, ast.GrantStmt):
        return _describe_grant(stmt, node)
    if isinstance(node, ast.CommentStmt):
        return _describe_comment(stmt, node)
    # A statement kind the rules do not know: keep it, name it by its hash, and flag it.
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(node).__name__.removesuffix("Stmt")).lower()
    digest = hashlib.sha256(sql.encode()).hexdigest()[:12]
    return stmt(kind, digest, Change.UPDATE, Risk.LOCK_RISK, declared="(statement)")


def _describe_drop(stmt: Any, node: Any) -> _Stmt:
    kind = _DESTRUCTIVE_DROPS.get(node.removeType) or _HARMLESS_DROPS.get(node.removeType)
    if kind is None or len(node.objects) != 1:
        digest = hashlib.sha256(_deparse(node).encode()).hexdigest()[:12]
        return stmt("drop", digest, Change.DELETE, Risk.DESTRUCTIVE, live="(object)", drop=True)  # type: ignore[no-any-return]
    obj = node.objects[0]
    table = None
    if isinstance(obj, ast.ObjectWithArgs):
        name = _func_identity(_names(obj.objname), None, obj.objargs)
    elif isinstance(obj, ast.TypeName):
        name = _qualified(_names(obj.names))
    elif isinstance(obj, ast.String):
        name = str(obj.sval)
    else:
        parts = _names(obj)
        if kind in {"trigger", "policy", "rule"}:
            table = _qualified(parts[:-1])
            name = f"{table}.{parts[-1]}"
        else:
            name = _qualified(parts)
    risk = Risk.DESTRUCTIVE if node.removeType in _DESTRUCTIVE_DROPS else Risk.SAFE
    return stmt(f"drop-{kind}", name, Change.DELETE, risk, live=kind.replace("-", " "),  # type: ignore[no-any-return]
                identity=(kind, name), drop=True, table=table)


def _describe_alter_domain(stmt: Any, node: Any) -> _Stmt:
    domain = _qualified(_names(node.typeName))
    sub = node.subtype
    if sub == "T":
        if node.def_ is None:
            return stmt("drop-domain-default", domain, Change.UPDATE, declared=None, live="default")  # type: ignore[no-any-return]
        return stmt("set-domain-default", domain, Change.UPDATE, declared=_deparse(node.def_))  # type: ignore[no-any-return]
    if sub == "N":
        return stmt("drop-domain-not-null", domain, Change.UPDATE, declared="nullable", live="not null")  # type: ignore[no-any-return]
    if sub == "O":
        # Checks every column of the domain's type for NULLs.
        return stmt("set-domain-not-null", domain, Change.UPDATE, Risk.DATA_DEPENDENT,  # type: ignore[no-any-return]
                    declared="not null", live="nullable")
    if sub == "C":
        name = f"{domain}.{node.def_.conname}"
        return stmt("add-domain-constraint", name, Change.CREATE, Risk.DATA_DEPENDENT,  # type: ignore[no-any-return]
                    declared="check", identity=("domain-constraint", name))
    if sub == "X":
        name = f"{domain}.{node.name}"
        return stmt("drop-domain-constraint", name, Change.DELETE, live="check",  # type: ignore[no-any-return]
                    identity=("domain-constraint", name), drop=True)
    if sub == "V":
        return stmt("validate-domain-constraint", f"{domain}.{node.name}", Change.UPDATE,  # type: ignore[no-any-return]
                    Risk.DATA_DEPENDENT, declared="validated", live="not validated")
    digest = hashlib.sha256(_deparse(node).encode()).hexdigest()[:12]
    return stmt("alter-domain", f"{domain}.{digest}", Change.UPDATE, Risk.LOCK_RISK,  # type: ignore[no-any-return]
                declared="(change)")


def _describe_alter_table(stmt: Any, node: Any, facts: SchemaFacts, sql: str) -> _Stmt:
    table = _rangevar(node.relation)
    if node.objtype == _OT.OBJECT_SEQUENCE:
        return stmt("alter-sequence", table, Change.UPDATE, declared="changed")  # type: ignore[no-any-return]
    if len(node.cmds) != 1:
        digest = hashlib.sha256(_deparse(node).encode()).hexdigest()[:12]
        return stmt("alter-table", f"{table}.{digest}", Change.UPDATE, Risk.LOCK_RISK,  # type: ignore[no-any-return]
                    declared="(several changes)", table=table)
    cmd = node.cmds[0]
    sub = cmd.subtype
    column = f"{table}.{cmd.name}" if cmd.name else table

    def col(action: str, change: Change, risk: Risk = Risk.SAFE, **kw: Any) -> _Stmt:
        return stmt(action, column, change, risk, table=table, **kw)  # type: ignore[no-any-return]

    if sub == _AT.AT_AddColumn:
        cdef = cmd.def_
        column = f"{table}.{cdef.colname}"
        constraints = list(cdef.constraints or ())
        risk = Risk.SAFE
        for c in constraints:
            if c.contype in (_CT.CONSTR_IDENTITY, _CT.CONSTR_GENERATED):
                risk = _max_risk(risk, Risk.LOCK_RISK)  # every row is written
            elif c.contype == _CT.CONSTR_DEFAULT and _volatile(c.raw_expr):
                risk = _max_risk(risk, Risk.LOCK_RISK)  # a volatile default rewrites the table
        has_default = any(c.contype in (_CT.CONSTR_DEFAULT, _CT.CONSTR_IDENTITY, _CT.CONSTR_GENERATED)
                          for c in constraints)
        if not has_default and any(c.contype == _CT.CONSTR_NOTNULL for c in constraints):
            risk = _max_risk(risk, Risk.DATA_DEPENDENT)  # fails as soon as the table has a row
        declared = facts.declared_columns.get(column) or _type_name(cdef.typeName)
        return stmt("add-column", column, Change.CREATE, risk, declared=declared, table=table,  # type: ignore[no-any-return]
                    identity=("column", column))
    if sub == _AT.AT_DropColumn:
        return col("drop-column", Change.DELETE, Risk.DESTRUCTIVE, identity=("column", column), drop=True,
                   live=facts.live_columns.get(column, "column"))
    if sub == _AT.AT_AlterColumnType:
        old = facts.live_columns.get(column)
        new = facts.declared_columns.get(column) or _type_name(cmd.def_.typeName)
        risk = _domain_change_risk(old, new, facts) or type_change_risk(old, new)
        if cmd.def_.collClause is not None:
            risk = _max_risk(risk, Risk.LOCK_RISK)  # indexes on the column are rebuilt
        return col("alter-column-type", Change.UPDATE, risk, declared=new, live=old)
    if sub == _AT.AT_ColumnDefault:
        if cmd.def_ is None:
            return col("drop-default", Change.UPDATE, declared=None, live="default")
        expression = re.search(r"set\s+default\s+(.*?);?\s*$", sql, re.IGNORECASE | re.DOTALL)
        return col("set-default", Change.UPDATE, declared=expression[1] if expression else "default")
    if sub == _AT.AT_SetNotNull:
        return col("set-not-null", Change.UPDATE, Risk.LOCK_RISK, declared="not null", live="nullable")
    if sub == _AT.AT_DropNotNull:
        return col("drop-not-null", Change.UPDATE, declared="nullable", live="not null")
    if sub == _AT.AT_DropExpression:
        return col("drop-expression", Change.UPDATE, declared="plain column", live="generated column")
    if sub in (_AT.AT_AddIdentity, _AT.AT_SetIdentity, _AT.AT_DropIdentity):
        identity = None if sub == _AT.AT_DropIdentity else "identity"
        return col("alter-identity", Change.UPDATE, declared=identity)
    if sub == _AT.AT_AddConstraint:
        con = cmd.def_
        name = f"{table}.{con.conname}"
        return stmt("add-constraint", name, Change.CREATE, Risk.SAFE, table=table,  # type: ignore[no-any-return]
                    declared=_constraint_kind(con), identity=("constraint", name))
    if sub == _AT.AT_ValidateConstraint:
        return stmt("validate-constraint", f"{table}.{cmd.name}", Change.UPDATE, Risk.DATA_DEPENDENT,  # type: ignore[no-any-return]
                    table=table, declared="validated", live="not validated")
    if sub == _AT.AT_DropConstraint:
        name = f"{table}.{cmd.name}"
        return stmt("drop-constraint", name, Change.DELETE, Risk.SAFE, table=table, live="constraint",  # type: ignore[no-any-return]
                    identity=("constraint", name), drop=True)
    rls = {
        _AT.AT_EnableRowSecurity: ("enable-rls", "row level security on"),
        _AT.AT_DisableRowSecurity: ("disable-rls", "row level security off"),
        _AT.AT_ForceRowSecurity: ("force-rls", "forced row level security"),
        _AT.AT_NoForceRowSecurity: ("no-force-rls", "row level security not forced"),
    }
    if sub in rls:
        action, text = rls[sub]
        return stmt(action, table, Change.UPDATE, table=table, declared=text)  # type: ignore[no-any-return]
    if sub in (_AT.AT_SetLogged, _AT.AT_SetUnLogged):
        action = "set-logged" if sub == _AT.AT_SetLogged else "set-unlogged"
        return stmt(action, table, Change.UPDATE, Risk.LOCK_RISK, table=table, declared=action[4:])  # type: ignore[no-any-return]
    if sub in (_AT.AT_AttachPartition, _AT.AT_DetachPartition):
        action = "attach-partition" if sub == _AT.AT_AttachPartition else "detach-partition"
        part = _rangevar(cmd.def_.name)
        return stmt(action, f"{table}.{part}", Change.UPDATE, Risk.LOCK_RISK, table=table,  # type: ignore[no-any-return]
                    declared="partition" if action.startswith("attach") else None)
    digest = hashlib.sha256(_deparse(node).encode()).hexdigest()[:12]
    return stmt("alter-table", f"{table}.{digest}", Change.UPDATE, Risk.LOCK_RISK, table=table,  # type: ignore[no-any-return]
                declared="(change)")


def _constraint_kind(con: Any) -> str:
    return {
        _CT.CONSTR_PRIMARY: "primary key",
        _CT.CONSTR_UNIQUE: "unique",
        _CT.CONSTR_CHECK: "check",
        _CT.CONSTR_FOREIGN: "foreign key",
        _CT.CONSTR_EXCLUSION: "exclusion",
    }.get(con.contype, "constraint")


def _describe_grant(stmt: Any, node: Any) -> _Stmt:
    objects = ",".join(
        _rangevar(o) if isinstance(o, ast.RangeVar) else str(o.sval) if isinstance(o, ast.String) else _deparse(o)
        for o in node.objects or ()
    )
    privileges = ",".join(p.priv_name for p in node.privileges) if node.privileges else "all"
    grantees = ",".join(
        "PUBLIC" if g.roletype == enums.RoleSpecType.ROLESPEC_PUBLIC else (g.rolename or "?")
        for g in node.grantees or ()
    )
    obj = f"{objects}/{privileges}/{grantees}"
    if node.is_grant:
        return stmt("grant", obj, Change.CREATE, declared=f"{privileges} to {grantees}")  # type: ignore[no-any-return]
    return stmt("revoke", obj, Change.DELETE, live=f"{privileges} to {grantees}")  # type: ignore[no-any-return]


def _describe_comment(stmt: Any, node: Any) -> _Stmt:
    obj = node.object
    if isinstance(obj, ast.ObjectWithArgs):
        name = _func_identity(_names(obj.objname), None, obj.objargs)
    elif isinstance(obj, ast.TypeName):
        name = _qualified(_names(obj.names))
    elif isinstance(obj, ast.String):
        name = str(obj.sval)
    else:
        name = _qualified(_names(obj))
    # Comments are documentation: short descriptions only, the text is in the SQL.
    return stmt("comment", name, Change.UPDATE,  # type: ignore[no-any-return]
                declared="comment" if node.comment is not None else None, live="other comment")


# --- type changes ----------------------------------------------------------------------------

_TYPE_RE = re.compile(r"^(?P<base>[a-z ]+?)\s*(?:\((?P<args>[0-9, ]+)\))?(?P<array>(\[\])*)$")


def _parse_type(text: str) -> tuple[str, tuple[int, ...], str]:
    m = _TYPE_RE.match(text.strip().lower().replace('"', ""))
    if not m:
        return text.strip().lower(), (), ""
    base = _TYPE_ALIASES.get(m["base"], m["base"])
    args = tuple(int(a) for a in m["args"].split(",")) if m["args"] else ()
    return base, args, m["array"] or ""


def _domain_change_risk(old: str | None, new: str, facts: SchemaFacts) -> Risk | None:
    """A column moving onto a domain over its own type (every row is checked against the domain's
    constraints under ACCESS EXCLUSIVE: lock-risk), or off a domain onto its base type (safe)."""
    def base(domains: Mapping[str, str], name: str | None) -> str | None:
        if name is None:
            return None
        bare = name.replace('"', "")
        return domains.get(bare) or domains.get(f"public.{bare}")

    onto = base(facts.declared_domains, new)
    if onto is not None and old is not None and _parse_type(onto) == _parse_type(old):
        return Risk.LOCK_RISK
    off = base(facts.live_domains, old)
    if off is not None and _parse_type(off) == _parse_type(new):
        return Risk.SAFE
    return None


def type_change_risk(old: str | None, new: str) -> Risk:
    """Risk of ``ALTER COLUMN ... TYPE new`` on a column of type ``old``.

    Safe when PostgreSQL only changes the catalog (varchar widened, varchar <-> text, numeric
    precision raised at the same scale), lock-risk when every row is rewritten but no value is
    lost (int -> bigint, date -> timestamp, anything -> text), destructive otherwise (narrowing,
    or a cast that may fail or lose information).
    """
    if old is None:
        return Risk.DESTRUCTIVE
    ob, oargs, oarr = _parse_type(old)
    nb, nargs, narr = _parse_type(new)
    if oarr != narr:
        return Risk.DESTRUCTIVE
    if ob == nb:
        if oargs == nargs:
            return Risk.SAFE
        if ob == "character varying":
            return Risk.SAFE if not nargs or (oargs and nargs[0] >= oargs[0]) else Risk.DESTRUCTIVE
        if ob == "numeric":
            if not nargs:
                return Risk.SAFE if not oargs or len(oargs) == 1 or oargs[1] == 0 else Risk.LOCK_RISK
            if not oargs:
                return Risk.DESTRUCTIVE
            op, os_ = oargs[0], oargs[1] if len(oargs) > 1 else 0
            np_, ns = nargs[0], nargs[1] if len(nargs) > 1 else 0
            if ns == os_ and np_ >= op:
                return Risk.SAFE
            if ns >= os_ and np_ - ns >= op - os_:
                return Risk.LOCK_RISK
            return Risk.DESTRUCTIVE
        if ob == "character":
            return Risk.LOCK_RISK if nargs and oargs and nargs[0] >= oargs[0] else Risk.DESTRUCTIVE
        # Precision of time types, bit lengths, ...: shrinking loses information, growing rewrites.
        return Risk.LOCK_RISK if nargs and oargs and nargs >= oargs else Risk.DESTRUCTIVE
    if (ob, nb) in _NO_REWRITE:
        if ob == "text" and nargs:
            return Risk.DESTRUCTIVE  # text -> varchar(n) truncates or fails
        if ob == "character varying" and nb == "character varying":
            return Risk.SAFE
        return Risk.SAFE
    if nb in _TEXTUAL and not nargs:
        return Risk.LOCK_RISK  # every value has a text form
    if nb in _WIDENINGS.get(ob, set()):
        if nb == "numeric" and nargs:
            return Risk.DESTRUCTIVE
        return Risk.LOCK_RISK
    return Risk.DESTRUCTIVE


# --- passes over the whole plan --------------------------------------------------------------


def _partitioned_keys(stmts: list[_Stmt], partitioned: set[str]) -> None:
    """PRIMARY KEY/UNIQUE on a partitioned table: ADD CONSTRAINT ... USING INDEX is refused there."""
    indexes = {s.node.idxname: s for s in stmts if s.action == "create-index" and s.table in partitioned}
    for s in stmts:
        if s.action != "add-constraint" or s.table not in partitioned:
            continue
        con = s.node.cmds[0].def_
        index = indexes.get(con.indexname) if con.indexname else None
        if index is None or con.contype not in (_CT.CONSTR_PRIMARY, _CT.CONSTR_UNIQUE):
            continue
        columns = [e.name for e in index.node.indexParams or ()]
        if None in columns:
            continue
        kind = "primary key" if con.contype == _CT.CONSTR_PRIMARY else "unique"
        s.sql = (f"alter table {_quoted(s.table or '')} add constraint {_quote_ident(con.conname)} "
                 f"{kind} ({', '.join(_quote_ident(c) for c in columns)});")
        index.absorbed = True


def _pair_replacements(stmts: list[_Stmt]) -> None:
    """A drop and a create of the same object are one replacement (migra's way to alter it)."""
    drops = {s.identity: s for s in stmts if s.drop and s.identity}
    for create in stmts:
        if create.drop or create.identity is None or create.identity not in drops:
            continue
        drop = drops[create.identity]
        kind = create.identity[0]
        for s in (drop, create):
            s.replaced = True
            s.change = Change.UPDATE
        drop.live, create.live = drop.live or kind, create.live or kind
        if kind in _DATA_KINDS:
            drop.risk = create.risk = Risk.DESTRUCTIVE
        else:
            # Nothing is lost: the object is back before the transaction commits.
            drop.risk = Risk.SAFE


def _is_enum_rename(s: _Stmt) -> bool:
    return s.action == "rename-type" and (s.declared or "").endswith(ENUM_OLD_SUFFIX)


def _recast_enum(s: _Stmt) -> str | None:
    """The enum a column is recast to, for migra's ``using col::text::enum`` statements."""
    if s.action != "alter-column-type":
        return None
    cmd = s.node.cmds[0]
    expr = cmd.def_.raw_default
    if (isinstance(expr, ast.TypeCast) and isinstance(expr.arg, ast.TypeCast)
            and _names(_attr(expr.arg.typeName, "names")) == ["text"]):
        return _qualified(_names(cmd.def_.typeName.names))
    return None


def _enum_changes(stmts: list[_Stmt], facts: SchemaFacts) -> None:
    """Fold migra's enum recreation into one item per enum, or rewrite it to ADD VALUE."""
    for start, rename in enumerate(stmts):
        if not _is_enum_rename(rename) or rename.absorbed:
            continue
        enum = rename.obj
        old_name = _qualified([enum.split(".", 1)[0], (rename.declared or "")])
        members = [rename]
        recast_columns: set[str] = set()
        for s in stmts[start + 1:]:
            if s.action == "create-type" and s.obj == enum:
                members.append(s)
            elif _recast_enum(s) == enum:
                members.append(s)
                recast_columns.add(s.obj)
            elif s.action == "drop-type" and s.obj == old_name:
                members.append(s)
                break
        defaults = [
            s for s in stmts
            if s.action in {"drop-default", "set-default"} and s.obj in recast_columns
            and not s.absorbed
            and ((s.action == "drop-default" and s.index < rename.index)
                 or (s.action == "set-default" and s.index > rename.index))
        ]
        group = sorted(members + defaults, key=lambda s: s.index)
        before = tuple(facts.live_enums.get(enum, ()))
        after = tuple(facts.declared_enums.get(enum, ()))
        head = group[0]
        others = [s for s in stmts if s not in group]
        added = [v for v in after if v not in before]
        removed = sorted(v for v in before if v not in after)
        additions_only = not removed and [v for v in after if v in before] == list(before)
        new_labels_unused = not any(f"'{v}'" in s.sql for s in others for v in added)
        if additions_only and new_labels_unused and before:
            head.sql, head.extra_sql = _add_value_statements(enum, before, after)[0], \
                tuple(_add_value_statements(enum, before, after)[1:])
            head.action, head.obj = "add-enum-value", f"{enum}." + ",".join(added)
            head.risk, head.change = Risk.SAFE, Change.UPDATE
            head.transactional = True
        else:
            head.extra_sql = tuple(s.sql for s in group[1:])
            head.sql = group[0].sql
            if removed:
                head.action, head.obj = "drop-enum-value", f"{enum}." + ",".join(removed)
                head.risk = Risk.DESTRUCTIVE
            else:
                head.action, head.obj = "alter-enum", enum
                # Reordering recreates the type and rewrites every column that uses it.
                head.risk = Risk.LOCK_RISK
            head.change = Change.UPDATE
        head.declared = "enum (" + ", ".join(after) + ")"
        head.live = "enum (" + ", ".join(before) + ")"
        head.identity, head.drop, head.replaced = None, False, False
        head.touches_extra = frozenset(s.table for s in group if s.table)
        for s in group[1:]:
            s.absorbed = True


def _add_value_statements(enum: str, before: tuple[str, ...], after: tuple[str, ...]) -> list[str]:
    schema, name = enum.split(".", 1)
    target = f'"{schema}"."{name}"'
    out: list[str] = []
    present = list(before)
    for position, label in enumerate(after):
        if label in present:
            continue
        following = next((v for v in after[position + 1:] if v in present), None)
        if following is not None:
            out.append(f"alter type {target} add value {_literal(label)} before {_literal(following)};")
        else:
            out.append(f"alter type {target} add value {_literal(label)};")
        present.append(label)
    return out


def _constraint_validation(stmts: list[_Stmt], facts: SchemaFacts, new_relations: set[str]) -> None:
    """NOT VALID in the transaction, VALIDATE after it, for FK and CHECK on existing tables."""
    for i, s in enumerate(stmts):
        if s.action != "add-constraint" or s.absorbed:
            continue
        con = s.node.cmds[0].def_
        table = s.table or ""
        existing = table in facts.live_tables and table not in new_relations
        nxt = stmts[i + 1] if i + 1 < len(stmts) else None
        validate = nxt if nxt and nxt.action == "validate-constraint" and nxt.obj == s.obj else None
        if con.contype in (_CT.CONSTR_FOREIGN, _CT.CONSTR_CHECK):
            if not existing:
                if validate is not None:  # a new table has no rows: validate in the same transaction
                    s.extra_sql += (validate.sql,)
                    validate.absorbed = True
                continue
            if not con.skip_validation:
                s.sql = _append_not_valid(s.sql)
                validate = _Stmt(index=s.index, sql=f"alter table {_quoted(table)} validate constraint "
                                 f"{_quote_ident(con.conname)};", node=None, action="validate-constraint",
                                 obj=s.obj, change=Change.UPDATE, risk=Risk.DATA_DEPENDENT, table=table,
                                 declared="validated", live="not validated")
                stmts.insert(i + 1, validate)
            s.risk = Risk.SAFE
            if validate is not None:
                validate.transactional = False
                validate.risk = Risk.DATA_DEPENDENT
        elif existing:
            # UNIQUE, PRIMARY KEY, EXCLUDE: they check every existing row.
            s.risk = _max_risk(s.risk, Risk.DATA_DEPENDENT)


def _concurrent_indexes(stmts: list[_Stmt], facts: SchemaFacts, new_relations: set[str]) -> None:
    """Build indexes on existing tables with CREATE INDEX CONCURRENTLY, after the transaction."""
    for i, s in enumerate(stmts):
        if s.action != "create-index" or s.absorbed:
            continue
        table = s.table or ""
        existing = table in facts.live_tables and table not in new_relations
        unique = bool(s.node.unique)
        if not existing:
            continue
        later = stmts[i + 1:]
        users = [u for u in later if u.action == "add-constraint" and u.node is not None
                 and u.node.cmds[0].def_.indexname == s.node.idxname and u.table == table]
        backs_pk = any(u.node.cmds[0].def_.contype == _CT.CONSTR_PRIMARY for u in users)
        referenced = unique and any(_foreign_key_needs(u, table, s.node, backs_pk) for u in later)
        if table in facts.partitioned_tables or referenced:
            s.risk = _max_risk(s.risk, Risk.LOCK_RISK)
            for u in users:
                u.risk = _max_risk(u.risk, Risk.DATA_DEPENDENT)
            continue
        s.sql = _concurrently(s.sql)
        s.transactional = False
        s.risk = Risk.DATA_DEPENDENT if unique else Risk.SAFE
        for u in users:
            u.transactional = False
            kind = u.node.cmds[0].def_.contype
            u.risk = Risk.DATA_DEPENDENT if kind == _CT.CONSTR_PRIMARY else Risk.SAFE


def _not_null_through_a_check(stmts: list[_Stmt], facts: SchemaFacts, new_relations: set[str],
                              partitioned: set[str]) -> list[_Stmt]:
    """SET NOT NULL on an existing table without scanning it under ACCESS EXCLUSIVE.

    PostgreSQL 12 and later skip the scan of ``SET NOT NULL`` when a validated ``CHECK (col IS NOT
    NULL)`` proves it. So: the check is added ``NOT VALID`` in the transaction (a short lock, no
    scan); after it, one item validates it (a scan that lets writes through), sets NOT NULL (no
    scan) and drops the check, each step in its own transaction. Older servers, new tables and
    partitioned tables (which refuse ``NOT VALID`` checks) keep the plain statement.
    """
    if facts.server_version < 12:
        return stmts
    out: list[_Stmt] = []
    for s in stmts:
        table = s.table or ""
        if (s.action != "set-not-null" or s.absorbed or table not in facts.live_tables or table in new_relations
                or table in partitioned):
            out.append(s)
            continue
        column = s.obj.rsplit(".", 1)[1]
        check = f"{column[:40]}_not_null_{hashlib.sha256(s.obj.encode()).hexdigest()[:8]}"
        target, name = _quoted(table), _quote_ident(check)
        s.sql = f"alter table {target} add constraint {name} check ({_quote_ident(column)} is not null) not valid;"
        s.risk = Risk.SAFE
        steps = (f"alter table {target} validate constraint {name};",
                 f"alter table {target} alter column {_quote_ident(column)} set not null;",
                 f"alter table {target} drop constraint if exists {name};")
        out += [s, _Stmt(index=s.index, sql="\n".join(steps), node=None, action="validate-not-null", obj=s.obj,
                         change=Change.UPDATE, risk=Risk.DATA_DEPENDENT, table=table, transactional=False,
                         declared="not null", live="nullable", steps=steps,
                         on_failure=f"alter table {target} drop constraint if exists {name};")]
    return out


def _domain_constraint_validation(stmts: list[_Stmt]) -> list[_Stmt]:
    """A check added to an existing domain: NOT VALID in the transaction (new values are checked at
    once), VALIDATE after it (the scan of every column of the domain's type)."""
    out: list[_Stmt] = []
    for s in stmts:
        out.append(s)
        if s.action != "add-domain-constraint" or s.absorbed or s.node.def_.skip_validation:
            continue
        domain, name = s.obj.rsplit(".", 1)
        s.sql = _append_not_valid(s.sql)
        s.risk = Risk.SAFE
        out.append(_Stmt(index=s.index, sql=f"alter domain {_quoted(domain)} validate constraint {_quote_ident(name)};",
                         node=None, action="validate-domain-constraint", obj=s.obj, change=Change.UPDATE,
                         risk=Risk.DATA_DEPENDENT, transactional=False, declared="validated",
                         live="not validated"))
    return out


def _foreign_key_needs(fk: _Stmt, table: str, index: Any, backs_pk: bool) -> bool:
    """Whether a foreign key added in the transaction needs this (unique) index to exist."""
    if fk.action != "add-constraint" or fk.node is None or not fk.transactional:
        return False
    con = fk.node.cmds[0].def_
    if con.contype != _CT.CONSTR_FOREIGN or con.pktable is None or _rangevar(con.pktable) != table:
        return False
    if not con.pk_attrs:
        return backs_pk  # REFERENCES t without columns means t's primary key
    columns = [e.name for e in index.indexParams or ()]
    return None not in columns and set(columns) == set(_names(con.pk_attrs))


_CREATE_INDEX_RE = re.compile(r"^\s*create\s+(unique\s+)?index\s+(?!concurrently\b)", re.IGNORECASE)


def _concurrently(sql: str) -> str:
    rewritten, count = _CREATE_INDEX_RE.subn(lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ", sql)
    if count != 1:
        raise SchemaError(f"cannot rewrite index creation to run concurrently: {sql[:200]}")
    return rewritten


def _append_not_valid(sql: str) -> str:
    return sql.rstrip().rstrip(";").rstrip() + " not valid;"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quoted(qualified: str) -> str:
    schema, name = qualified.split(".", 1)
    return f"{_quote_ident(schema)}.{_quote_ident(name)}"


# --- items -----------------------------------------------------------------------------------


def _touches(s: _Stmt, facts: SchemaFacts) -> frozenset[str]:
    """The relations and types a statement works on, for ``phases.arrange``."""
    names = set(s.touches_extra)
    if s.table:
        names.add(s.table)
    if s.action in _NAMED_ACTIONS:
        names.add(s.obj)
    if s.action == "drop-index" and s.obj in facts.live_index_tables:
        names.add(facts.live_index_tables[s.obj])
    if s.action in {"grant", "revoke"}:
        names.update(s.obj.split("/", 1)[0].split(","))
    if s.action == "comment":
        names.update({s.obj, s.obj.rsplit(".", 1)[0]})
    return frozenset(names)


_NAMED_ACTIONS = {
    "create-table", "drop-table", "create-view", "drop-view", "create-materialized-view",
    "drop-materialized-view", "create-sequence", "drop-sequence", "alter-sequence", "create-type", "drop-type",
    "create-index", "drop-index", "create-domain", "drop-domain", "alter-domain",
}


def _items(database: str, stmts: Sequence[_Stmt], facts: SchemaFacts) -> list[DriftItem]:
    ids: list[str] = []
    seen: dict[str, int] = {}
    for s in stmts:  # numbered in the engine's order, which does not depend on the arrangement
        base = f"{database}:{s.action}:{s.obj}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    arrangement = arrange([
        Statement(action=s.action, obj=s.obj, sql=s.sql, destructive=s.risk == Risk.DESTRUCTIVE,
                  touches=_touches(s, facts), identity=s.identity, drop=s.drop)
        for s in stmts
    ], facts)
    items: list[DriftItem] = []
    for position in arrangement.order:
        s = stmts[position]
        sql = "\n".join((s.sql.strip(), *(x.strip() for x in s.extra_sql)))
        detail: dict[str, object] = {"action": s.action, "replacement": s.replaced}
        if s.steps:
            detail["steps"] = list(s.steps)
        if s.on_failure:
            detail["on_failure"] = s.on_failure
        if position in arrangement.groups:
            detail["group"] = ids[arrangement.groups[position]]
        items.append(
            DriftItem(
                id=ids[position],
                kind=KIND,
                name=database,
                field=s.obj,
                change=s.change,
                declared=s.declared,
                live=s.live,
                risk=s.risk,
                phase=Phase.SCHEMA_DESTRUCTIVE if position in arrangement.late else Phase.SCHEMA_ADDITIVE,
                sql=sql,
                transactional=s.transactional,
                detail=detail,
            )
        )
    return items
