"""The import engine (spec §6, §7, §11): validate, match and write a batch of records.

Library first: the HTTP route, the CLI and the job worker call ``import_records``
inside a transaction they own (``db.engine.write_transaction``); nothing here
commits. Every step is set-based, so a batch costs the same few indexed queries
whatever the number of stored records:

1. validate each record on its own (a bad one fails alone);
2. lock its match keys across processes, *then* look the keys up, so that two
   imports running at once can never both decide that a record is new;
3. resolve relations (a contact's ``company_name``), match against the stored
   records and the batch's earlier records, apply ``on_duplicate``;
4. insert the new records in one go and write back the merged duplicates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from kasar.db.ids import new_id
from kasar.dedup.candidates import PossibleDuplicates, enqueue
from kasar.dedup.keys import match_keys_for
from kasar.dedup.matcher import Matcher, MatchKey, record_keys
from kasar.errors import Conflict, ValidationFailed
from kasar.records import repository as repo
from kasar.records.validation import PreparedRow, validate_write
from kasar.schema.model import FieldDef, ObjectDef
from kasar.schema.repository import Workspace, now_utc
from kasar.schema.types import COMPOUND_TYPES, FieldType

ON_DUPLICATE = ("skip", "update", "overwrite")
MATCH_KINDS = ("email", "phone", "linkedin", "domain", "name")
ON_POSSIBLE_DUPLICATE = ("create", "hold")


@dataclass(frozen=True)
class ImportOptions:
    """``dry_run`` computes the whole answer and writes nothing. ``on_duplicate``:
    ``skip`` leaves the stored record alone, ``update`` fills its empty fields from
    the duplicate, ``overwrite`` replaces the fields the duplicate gives. ``match_on``
    limits duplicate detection to these kinds of key (empty: all; a record's own id
    always matches). ``on_possible_duplicate``: ``hold`` puts a record that has no
    exact duplicate but fuzzily matches one (``dedup.candidates``) in the review queue
    instead of creating it."""

    dry_run: bool = False
    on_duplicate: str = "skip"
    match_on: tuple[str, ...] = ()
    on_possible_duplicate: str = "create"


@dataclass
class RecordResult:
    index: int
    status: str  # created | duplicate | failed | held
    id: str | None = None
    duplicate_of: str | None = None
    matched_on: list[str] | None = None
    error: dict[str, str] | None = None
    updated: bool = False
    review_id: str | None = None
    candidates: list[dict[str, Any]] | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    """column -> (before, after) for what this duplicate wrote into its record."""

    def to_api(self, *, with_updated: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.id is not None:
            out["id"] = self.id
        if self.duplicate_of is not None:
            out["duplicate_of"] = self.duplicate_of
            out["matched_on"] = self.matched_on
            if with_updated:
                out["updated"] = self.updated
        if self.error is not None:
            out["error"] = self.error
        if self.candidates is not None:
            out["review_id"] = self.review_id
            out["candidates"] = self.candidates
        return out


@dataclass
class ImportResult:
    object_name: str
    created: int = 0
    duplicates: int = 0
    failed: int = 0
    updated: int = 0
    held: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    results: list[RecordResult] = field(default_factory=list)
    on_duplicate: str = "skip"
    on_possible_duplicate: str = "create"
    # Records created in other objects to link by name ({"companies": [ids]}); not
    # part of the answer, an import job keeps them so that undo removes them too.
    linked: dict[str, list[str]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The documented answer; ``updated`` only when duplicates may update."""
        with_updated = self.on_duplicate != "skip"
        out: dict[str, Any] = {
            "object_name": self.object_name,
            "created": self.created,
            "duplicates": self.duplicates,
            "failed": self.failed,
        }
        if with_updated:
            out["updated"] = self.updated
        if self.on_possible_duplicate == "hold":
            out["held"] = self.held
        out["errors"] = self.errors
        out["results"] = [r.to_api(with_updated=with_updated) for r in self.results]
        return out


def import_records(
    conn: Connection,
    ws: Workspace,
    object_name: str,
    records: Sequence[object],
    options: ImportOptions = ImportOptions(),
    prepared: Sequence[Prepared] | None = None,
) -> ImportResult:
    """Import ``records`` (field name -> value maps) into ``object_name``.

    ``prepared`` is ``prepare_records(obj, records)`` when the caller computed it
    already (a job does, for the next chunk, in another process).
    Raises ``InvalidObject`` or ``ValidationFailed`` for a request-level problem
    (a bad option, a record that is not a mapping) before anything is written.
    """
    obj = ws.object(object_name)
    if options.on_duplicate not in ON_DUPLICATE:
        raise ValidationFailed("on_duplicate must be one of: " + ", ".join(ON_DUPLICATE))
    if options.on_possible_duplicate not in ON_POSSIBLE_DUPLICATE:
        raise ValidationFailed(
            "on_possible_duplicate must be one of: " + ", ".join(ON_POSSIBLE_DUPLICATE)
        )
    if set(options.match_on) - set(MATCH_KINDS):
        raise ValidationFailed("match_on takes keys among: " + ", ".join(MATCH_KINDS))
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValidationFailed(f"Record {i} must be a JSON object")
    if not options.dry_run:
        return _Batch(conn, ws, obj, records, options, prepared).run()
    savepoint = conn.begin_nested()
    try:
        return _Batch(conn, ws, obj, records, options, prepared).run()
    finally:
        savepoint.rollback()


Prepared = tuple[PreparedRow | None, set[MatchKey], str | None]


def prepare_records(obj: ObjectDef, records: Sequence[Mapping[str, object]]) -> list[Prepared]:
    """Validate each record and compute its match keys: ``(row, keys, None)`` or
    ``(None, set(), error message)``. Needs no database, so it can run elsewhere."""
    out: list[Prepared] = []
    for rec in records:
        try:
            row = validate_write(obj, rec, allow_system=True)
        except ValidationFailed as exc:
            out.append((None, set(), exc.message))
            continue
        system_id = row.system.get("id")
        own_id = system_id if isinstance(system_id, str) else None
        row.stored_keys = match_keys_for(obj, row.values)
        out.append((row, record_keys(obj, row.values, own_id, row.stored_keys), None))
    return out


_Group = tuple[FieldDef, tuple[str, ...]]


class _Batch:
    """The working state of one call: prepared rows, keys, and the decision per record."""

    def __init__(
        self,
        conn: Connection,
        ws: Workspace,
        obj: ObjectDef,
        records: Sequence[object],
        options: ImportOptions,
        prepared: Sequence[Prepared] | None = None,
    ) -> None:
        self.conn, self.ws, self.obj, self.options = conn, ws, obj, options
        self.prepared = prepared
        self.records: list[Mapping[str, object]] = [r for r in records if isinstance(r, Mapping)]
        self.results: dict[int, RecordResult] = {}
        self.rows: dict[int, PreparedRow] = {}
        self.keys: dict[int, set[MatchKey]] = {}
        self.applied: dict[int, list[_Group]] = {}  # duplicate -> field groups it writes
        self.linked: dict[str, list[str]] = {}  # object -> ids created to link by name

    def run(self) -> ImportResult:
        self._validate()
        repo.lock_for_write(
            self.conn, self.ws, self.obj, [(self.rows[i], self.keys[i]) for i in self.rows]
        )
        self._relation_failures()
        self._match()
        targets: dict[str, dict[str, Any]] = {}
        if self.options.on_duplicate != "skip":
            created = {r.id for r in self._of("created")}
            stored = {r.duplicate_of or "" for r in self._of("duplicate")} - created
            targets = repo.rows_by_id(self.conn, self.ws, self.obj, stored, for_update=True)
            targets.update({r.id: self.rows[r.index].values for r in self._of("created") if r.id})
            self._decide_merges(targets)
        self._resolve_relations()
        changed = self._merge(targets)
        new = [(r.id, self.rows[r.index]) for r in self._of("created")]
        stamp = now_utc()
        rows = [repo.new_row(row.values, {**row.system, "id": rid}, stamp) for rid, row in new]
        keys = [row.stored_keys for _, row in new]  # None where a merge changed the row
        repo.insert_records(self.conn, self.ws, self.obj, rows, keys)
        repo.update_rows(self.conn, self.ws, self.obj, changed)
        held = self._of("held")
        if held and not self.options.dry_run:
            pairs = [(self.records[r.index], r.candidates or []) for r in held]
            for r, review_id in zip(held, enqueue(self.conn, self.obj.name, pairs), strict=True):
                r.review_id = review_id
        return self._result()

    def _of(self, status: str) -> list[RecordResult]:
        return [r for _, r in sorted(self.results.items()) if r.status == status]

    def _fail(self, index: int, message: str) -> None:
        error = {"code": "VALIDATION_ERROR", "message": message}
        self.results[index] = RecordResult(index, "failed", error=error)
        self.rows.pop(index, None)
        self.keys.pop(index, None)

    def _validate(self) -> None:
        prepared = self.prepared or prepare_records(self.obj, self.records)
        for i, (row, keys, error) in enumerate(prepared):
            if row is None:
                self._fail(i, error or "Invalid record")
                continue
            self.rows[i], self.keys[i] = row, keys

    def _relation_rows(self, indexes: set[int]) -> list[PreparedRow | None]:
        """Rows by request index, as ``resolve_relations`` wants them (None: left out)."""
        return [self.rows[i] if i in indexes else None for i in range(len(self.records))]

    def _relation_failures(self) -> None:
        """Resolve the relations of every valid record inside a savepoint that is then
        rolled back: it tells which records fail (a failed record must not shadow later
        ones as a match) without creating targets for records that end up skipped."""
        if not any(r.relation_ids or r.relation_names for r in self.rows.values()):
            return
        if repo.relations_cannot_fail(self.ws, self.obj, self.rows.values()):
            return  # only names of targets that are created when missing
        savepoint = self.conn.begin_nested()
        try:
            rows = self._relation_rows(set(self.rows))
            for i, message in repo.resolve_relations(self.conn, self.ws, self.obj, rows).items():
                self._fail(i, message)
        finally:
            savepoint.rollback()

    def _resolve_relations(self) -> None:
        """Link (and create by name) the targets of the records that are written."""
        wanted = {r.index for r in self._of("created")}
        wanted |= {i for i, groups in self.applied.items() for f, _ in groups if f.relation}
        wanted = {i for i in wanted if self.rows[i].relation_ids or self.rows[i].relation_names}
        if wanted and repo.resolve_relations(
            self.conn, self.ws, self.obj, self._relation_rows(wanted), self.linked
        ):
            # Only a target deleted by another transaction since the first pass gets here.
            raise Conflict("A related record changed during the import; nothing was stored, retry")

    def _match(self) -> None:
        kinds = {"id", *self.options.match_on} if self.options.match_on else None
        matcher = Matcher(self.obj.name, self._candidates(), kinds=kinds)
        possible = None
        if self.options.on_possible_duplicate == "hold":
            values = {i: row.values for i, row in self.rows.items()}
            possible = PossibleDuplicates(self.conn, self.ws, self.obj, values)
        for i in sorted(self.rows):
            found = matcher.find(self.keys[i])
            if found is None and possible and (candidates := possible.candidates(i)):
                self.results[i] = RecordResult(i, "held", candidates=candidates)
            elif found is None:
                system_id = self.rows[i].system.get("id")
                record_id = system_id if isinstance(system_id, str) else new_id()
                self.results[i] = RecordResult(i, "created", id=record_id)
                matcher.add(record_id, self.keys[i])
                if possible:
                    possible.created(i, record_id)
            else:
                self.results[i] = RecordResult(
                    i, "duplicate", duplicate_of=found.target, matched_on=list(found.matched_on)
                )
                matcher.add(found.target, self.keys[i])

    def _candidates(self) -> dict[str, set[MatchKey]]:
        """Stored records sharing a key with the batch, each with the keys it shares;
        those sharing a name also with all their keys, since the name rule must know
        whether they have emails or phones. At most three indexed, batched queries."""
        wanted = set().union(*self.keys.values()) if self.keys else set()
        found = repo.find_keys(self.conn, self.obj.name, {k for k in wanted if k[0] != "id"})
        out: dict[str, set[MatchKey]] = defaultdict(set)
        for key, rids in found.items():
            for rid in rids:
                out[rid].add(key)
        given = {v for k, v in wanted if k == "id"}
        for rid in repo.existing_ids(self.conn, self.ws, self.obj.name, given) if given else ():
            out[rid].add(("id", rid))
        named = {rid for key, rids in found.items() if key[0] == "name" for rid in rids}
        if named:
            for rid, keys in repo.keys_of_records(self.conn, self.obj.name, named).items():
                out[rid] |= keys
        return out

    def _decide_merges(self, targets: dict[str, dict[str, Any]]) -> None:
        """Which field groups each duplicate writes into its target, in request order
        (``update``: the first value for an empty field wins; ``overwrite``: the last
        value wins). A relation that will not be written is dropped before it is
        resolved, so that it creates nothing."""
        filled = {t: {c for c, v in row.items() if _filled(v)} for t, row in targets.items()}
        for pending in self._of("created"):
            row = self.rows[pending.index]
            refs = {*row.relation_ids, *row.relation_names}
            filled[pending.id or ""] |= {f.column for f in self.obj.fields if f.name in refs}
        for res in self._of("duplicate"):
            target = res.duplicate_of
            if target is None or target not in filled:
                continue
            row, groups = self.rows[res.index], []
            for f, columns in _given_groups(self.obj, self.records[res.index]):
                has_ref = f.name in row.relation_ids or f.name in row.relation_names
                if not (has_ref or _filled(row.values.get(columns[0]))):
                    continue
                if self.options.on_duplicate == "update" and columns[0] in filled[target]:
                    row.relation_ids.pop(f.name, None)
                    row.relation_names.pop(f.name, None)
                    continue
                groups.append((f, columns))
                filled[target].add(columns[0])
            self.applied[res.index] = groups

    def _merge(self, targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Copy the decided groups into the targets; the stored targets that changed."""
        stored_changed: dict[str, dict[str, Any]] = {}
        created = {r.id: self.rows[r.index] for r in self._of("created")}
        for index, groups in self.applied.items():
            res, values = self.results[index], self.rows[index].values
            target = targets[res.duplicate_of or ""]
            for _, columns in groups:
                for column in columns:
                    if target.get(column) != values.get(column):
                        res.changes[column] = (target.get(column), values.get(column))
                        target[column] = values.get(column)
                        res.updated = True
            if res.updated and res.duplicate_of in created:
                created[res.duplicate_of].stored_keys = None  # its keys may have changed
            elif res.updated:
                target["updated_at"] = now_utc()
                stored_changed[res.duplicate_of or ""] = target
        return list(stored_changed.values())

    def _result(self) -> ImportResult:
        out = ImportResult(
            self.obj.name,
            on_duplicate=self.options.on_duplicate,
            on_possible_duplicate=self.options.on_possible_duplicate,
        )
        out.results = [self.results[i] for i in range(len(self.records))]
        out.linked = self.linked
        for r in out.results:
            if r.status == "created":
                out.created += 1
            elif r.status == "duplicate":
                out.duplicates += 1
                out.updated += r.updated
            elif r.status == "held":
                out.held += 1
            else:
                out.failed += 1
                out.errors.append({"index": r.index, **(r.error or {})})
        return out


def _filled(value: object) -> bool:
    return value is not None and value != ""


def _given_groups(obj: ObjectDef, record: Mapping[str, object]) -> list[_Group]:
    """The fields a record names, each with the columns written together (a primary
    email and its list, a pipeline and its step), once each, in schema order."""
    named = {ref.field.name for key in record if (ref := obj.key(str(key))) and ref.field}
    groups: list[_Group] = []
    for f in obj.fields:
        if f.name not in named:
            continue
        if f.type in COMPOUND_TYPES:
            groups.append((f, (f.column, f.list_column)))
        elif f.type is FieldType.PIPELINE:
            groups.append((f, (f.column, f.step_column)))
        else:
            groups.append((f, (f.column,)))
    return groups


__all__ = [
    "MATCH_KINDS",
    "ON_DUPLICATE",
    "ON_POSSIBLE_DUPLICATE",
    "ImportOptions",
    "ImportResult",
    "Prepared",
    "RecordResult",
    "import_records",
    "prepare_records",
]
