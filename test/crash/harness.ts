/**
 * The SIGKILL harness: a child checkpoints in a loop and prints "ACK n" after each checkpoint returns; we kill it at
 * random moments, reopen the store, and check that the stored state is readable and at least the last ACK.
 */
import { Effect, Either, Layer } from "effect"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { TaskStore } from "../../src/index.js"
import * as StoreUrl from "../../src/StoreUrl.js"
import { spawnChild } from "../helpers/child.js"
import pg from "pg"
import { freshUrl, postgresUrl } from "../helpers/postgres.js"
import { tempFilesIn } from "../helpers/store.js"

export interface CrashResult {
  readonly kills: number
  readonly unreadable: number
  readonly lost_acked: number
  readonly orphans: number
}

export type StoreKind = "file" | "sqlite" | "postgres"

/** Where a store of `kind` lives for a run that owns the directory `dir` (Postgres: fresh tables on the server). */
export const locationIn = (kind: StoreKind, dir: string) =>
  kind === "file" ? dir : kind === "sqlite" ? join(dir, "tasks.db") : freshUrl()

export const spec = (kind: StoreKind, location: string) => (kind === "postgres" ? location : `${kind}:${location}`)

const storeLayer = (kind: StoreKind, location: string): Layer.Layer<TaskStore.TaskStore, unknown> =>
  StoreUrl.layer(spec(kind, location))

/**
 * For Postgres, what a killed client could leave behind: a transaction still open on the server (its connection not
 * yet seen closed) holding the task's advisory lock, which would hold up every other writer of the task.
 */
const postgresOrphans = async (location: string, id: string): Promise<number> => {
  const prefix = new URL(location).searchParams.get("vltask_prefix") ?? "vltask_"
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ held: string }>(
      `SELECT count(*) AS held FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objid = (hashtext($1)::bigint & 4294967295)::oid`,
      [`${prefix}${id}`]
    )
    return Number(rows[0]?.held ?? 0)
  } finally {
    await client.end()
  }
}

/**
 * Files a crashed writer can leave behind that a reopened store must have cleaned up. For SQLite, the WAL and shared
 * memory files are the database's own (not orphans); a rollback journal would be a crashed transaction's.
 */
const orphansIn = async (kind: StoreKind, location: string, id: string): Promise<number> => {
  switch (kind) {
    case "file":
      return (
        tempFilesIn(join(location, "tasks")).length +
        readdirSync(join(location, "tasks")).filter((n) => n.startsWith(".break-") || n.endsWith(".lock")).length
      )
    case "sqlite":
      return readdirSync(dirname(location)).filter((n) => n.endsWith("-journal")).length
    case "postgres":
      return postgresOrphans(location, id)
  }
}

/** Reopens the store and reads the task's checkpoint: its n, or a description of why it is unreadable. */
const readBack = (kind: StoreKind, location: string, id: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* TaskStore.TaskStore
      const record = yield* Effect.either(store.get(id))
      if (Either.isLeft(record)) return Either.left(record.left.message)
      try {
        const state = JSON.parse(Buffer.from(record.right.state!).toString("utf8")) as { n: number; pad: string }
        if (typeof state.n !== "number" || state.pad.length !== 1024) return Either.left("state has the wrong shape")
        return Either.right(state.n)
      } catch (e) {
        return Either.left(`state does not parse: ${String(e)}`)
      }
    }).pipe(Effect.provide(storeLayer(kind, location)), Effect.scoped)
  )

/** Runs `kills` crash rounds against one store; `onRound` sees each round's figures. */
export const runCrashes = async (options: {
  readonly kind: StoreKind
  readonly location: string
  readonly kills: number
  readonly maxDelayMs?: number
  readonly onRound?: (round: number, ack: number, stored: number | string) => void
}): Promise<CrashResult> => {
  const id = "crash-task"
  let unreadable = 0
  let lost = 0
  let orphans = 0
  const maxDelay = options.maxDelayMs ?? 25
  for (let round = 0; round < options.kills; round++) {
    const child = await spawnChild(["checkpoint", spec(options.kind, options.location), id])
    await child.waitFor((l) => l.startsWith("ACK "))
    // A random moment inside the checkpoint loop, at sub-millisecond resolution.
    const delay = Math.random() * maxDelay
    await new Promise((r) => setTimeout(r, delay))
    child.process.kill("SIGKILL")
    await child.exited
    const ack = child.lastAck()
    const stored = await readBack(options.kind, options.location, id)
    if (Either.isLeft(stored)) unreadable++
    else if (stored.right < ack) lost++
    const left = await orphansIn(options.kind, options.location, id)
    orphans += left
    options.onRound?.(round, ack, Either.isLeft(stored) ? stored.left : stored.right)
  }
  return { kills: options.kills, unreadable, lost_acked: lost, orphans }
}

/** The one-line summary `npm run test:crash` ends with. */
export const summary = (kind: StoreKind, r: CrashResult) =>
  `crash ${kind}: kills=${r.kills} unreadable=${r.unreadable} lost_acked=${r.lost_acked} orphans=${r.orphans}`
