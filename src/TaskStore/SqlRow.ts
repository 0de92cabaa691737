/**
 * The row shape shared by the SQL stores (SQLite, Postgres): metadata in plain columns (JSON text for the nested
 * parts), data in BLOB/bytea columns, and the mapping of a `TaskPatch` to column assignments.
 *
 * @since 0.1.0
 */
import * as TaskRecord from "../TaskRecord.js"

/** The JSON columns are TEXT in both databases, so both drivers return them as strings. */
const parseJson = (value: string): unknown => JSON.parse(value)

/** The metadata columns, in `SELECT` and `RETURNING` order. */
export const metaColumns =
  "id, kind, status, revision, progress, lease, interrupt, reason, failure, attempts, created_at, updated_at, started_at, finished_at, polled_at"

/** A row of metadata as drivers return it (Postgres returns BIGINT as strings). */
export interface MetaRow {
  readonly id: string
  readonly kind: string
  readonly status: TaskRecord.Status
  readonly revision: number | string
  readonly progress: string
  readonly lease: string | null
  readonly interrupt: TaskRecord.Interrupt | null
  readonly reason: string | null
  readonly failure: string | null
  readonly attempts: number | string
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly started_at: number | string | null
  readonly finished_at: number | string | null
  readonly polled_at: number | string | null
}

/** A whole row. */
export interface FullRow extends MetaRow {
  readonly input: Uint8Array
  readonly state: Uint8Array | null
  readonly result: Uint8Array | null
  readonly error: Uint8Array | null
}

/** The record metadata of a row. */
export const toInfo = (row: MetaRow): TaskRecord.TaskInfo => {
  const info: Record<string, unknown> = {
    id: row.id,
    kind: row.kind,
    status: row.status,
    revision: Number(row.revision),
    progress: parseJson(row.progress),
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at)
  }
  if (row.lease !== null) info.lease = parseJson(row.lease)
  if (row.interrupt !== null) info.interrupt = row.interrupt
  if (row.reason !== null) info.reason = row.reason
  if (row.failure !== null) info.failure = parseJson(row.failure)
  if (row.started_at !== null) info.startedAt = Number(row.started_at)
  if (row.finished_at !== null) info.finishedAt = Number(row.finished_at)
  if (row.polled_at !== null) info.polledAt = Number(row.polled_at)
  return info as TaskRecord.TaskInfo
}

/** The whole record of a row. */
export const toRecord = (row: FullRow): TaskRecord.TaskRecord => {
  const record: Record<string, unknown> = { ...toInfo(row), input: row.input }
  if (row.state !== null) record.state = row.state
  if (row.result !== null) record.result = row.result
  if (row.error !== null) record.error = row.error
  return record as unknown as TaskRecord.TaskRecord
}

/** better-sqlite3 binds Buffers as BLOBs: a view, not a copy. */
export const blob = (bytes: Uint8Array | undefined): Buffer | null =>
  bytes === undefined ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
/** JSON text of a value, or NULL. */
// Stryker disable next-line ConditionalExpression: the drivers bind `undefined` as NULL too.
export const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value))
/** A value or NULL. */
// Stryker disable next-line ConditionalExpression: the drivers bind `undefined` as NULL too.
export const orNull = <A>(value: A | undefined): A | null => (value === undefined ? null : value)

/** The columns and values a patch sets. */
export const assignments = (patch: TaskRecord.TaskPatch): Array<readonly [string, unknown]> => {
  const out: Array<readonly [string, unknown]> = []
  const has = (key: keyof TaskRecord.TaskPatch) => Object.prototype.hasOwnProperty.call(patch, key)
  if (has("status")) out.push(["status", patch.status])
  if (has("progress")) out.push(["progress", json(patch.progress)])
  if (has("lease")) {
    out.push(["lease", json(patch.lease)])
    out.push(["lease_token", orNull(patch.lease?.token)])
    out.push(["lease_expires_at", orNull(patch.lease?.expiresAt)])
  }
  if (has("interrupt")) out.push(["interrupt", orNull(patch.interrupt)])
  if (has("reason")) out.push(["reason", orNull(patch.reason)])
  if (has("failure")) out.push(["failure", json(patch.failure)])
  if (has("attempts")) out.push(["attempts", patch.attempts])
  if (has("updatedAt")) out.push(["updated_at", patch.updatedAt])
  if (has("startedAt")) out.push(["started_at", orNull(patch.startedAt)])
  if (has("finishedAt")) out.push(["finished_at", orNull(patch.finishedAt)])
  if (has("polledAt")) out.push(["polled_at", orNull(patch.polledAt)])
  if (has("state")) out.push(["state", blob(patch.state)])
  if (has("result")) out.push(["result", blob(patch.result)])
  if (has("error")) out.push(["error", blob(patch.error)])
  return out
}

/** A statement with `?` placeholders and its parameters. */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/** The `INSERT` of a new record (revision 1), returning its metadata. */
export const insert = (
  table: string,
  id: string,
  record: Omit<TaskRecord.TaskRecord, "revision">,
  onConflict = ""
): Statement => ({
  text: `INSERT INTO ${table} (id, kind, status, revision, progress, lease, lease_token, lease_expires_at,
    interrupt, reason, failure, attempts, created_at, updated_at, started_at, finished_at, polled_at,
    input, state, result, error)
   VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)${onConflict} RETURNING ${metaColumns}`,
  params: [
    id,
    record.kind,
    record.status,
    json(record.progress),
    json(record.lease),
    orNull(record.lease?.token),
    orNull(record.lease?.expiresAt),
    orNull(record.interrupt),
    orNull(record.reason),
    json(record.failure),
    record.attempts,
    record.createdAt,
    record.updatedAt,
    orNull(record.startedAt),
    orNull(record.finishedAt),
    orNull(record.polledAt),
    blob(record.input),
    blob(record.state),
    blob(record.result),
    blob(record.error)
  ]
})

/** Compare-and-swap in one statement: applies `patch` only where the revision is still `expected`, without a read. */
export const casUpdate = (table: string, id: string, expected: number, patch: TaskRecord.TaskPatch): Statement => {
  const sets = assignments(patch)
  return {
    text: `UPDATE ${table} SET ${[...sets.map(([c]) => `${c} = ?`), "revision = revision + 1"].join(", ")}
     WHERE id = ? AND revision = ? RETURNING ${metaColumns}`,
    params: [...sets.map(([, v]) => v), id, expected]
  }
}

/** The query of one `list` page (one row more than the page, to tell whether there is a next one). */
export const listPage = (table: string, filter: TaskRecord.ListFilter): Statement & { readonly limit: number } => {
  const where: Array<string> = []
  const params: Array<unknown> = []
  const statuses =
    filter.status === undefined ? [] : typeof filter.status === "string" ? [filter.status] : filter.status
  if (statuses.length > 0) {
    where.push(`status IN (${statuses.map(() => "?").join(", ")})`)
    params.push(...statuses)
  }
  if (filter.kind !== undefined) {
    where.push("kind = ?")
    params.push(filter.kind)
  }
  if (filter.after !== undefined) {
    where.push("id > ?")
    params.push(filter.after)
  }
  const limit = Math.max(1, filter.limit ?? 50)
  return {
    text: `SELECT ${metaColumns} FROM ${table} ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`} ORDER BY id LIMIT ?`,
    params: [...params, limit + 1],
    limit
  }
}

/** The page of `list` from its rows. */
export const toPage = (rows: ReadonlyArray<MetaRow>, limit: number): TaskRecord.Page =>
  TaskRecord.cutPage(rows.map(toInfo), limit)
