/**
 * `npm run bench:breakdown`: where a checkpoint's time and a large state's memory go, layer by layer, so that the
 * analysis in docs/performance.md can be reproduced.
 *
 * - file: the raw recipe; every system call of the store's protocol made raw (fairness hint, temp file, fsyncs,
 *   rename, under a lock kept: `checkpointWritesFile`); `store.update` alone; `task.checkpoint` through the runner.
 * - SQLite: a raw `UPDATE`; the store's own checkpoint `UPDATE` on better-sqlite3 (`checkpointWritesSqlite`);
 *   `store.update` alone; `task.checkpoint` through the runner.
 * - Postgres (when a server answers at `VLTASK_BENCH_POSTGRES`): a raw `UPDATE` on a plain `pg` client; the store's own
 *   statement, prepared, on that client; `store.update` alone; `task.checkpoint` through the runner.
 * - 16 MiB state: peak RSS growth / state size with a garbage collection forced after each checkpoint.
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { Holder, TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { fileCheckpoints, postgresCheckpoints, sqliteCheckpoints } from "./checkpoint.js"
import {
  checkpointWritesFile,
  checkpointWritesPostgres,
  checkpointWritesSqlite,
  connectedClient,
  dropTables,
  fileRaw
} from "./raw.js"
import { largeState } from "./largeState.js"
import { median, runningRecord, scratchDir } from "./util.js"

const n = 1000
const rate = (f: () => void) => {
  const rounds: Array<number> = []
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < n / 5; i++) f()
    rounds.push(((n / 5) * 1e9) / Number(process.hrtime.bigint() - start))
  }
  return median(rounds)
}
const rateAsync = async (f: () => Promise<unknown>) => {
  const rounds: Array<number> = []
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < n / 5; i++) await f()
    rounds.push(((n / 5) * 1e9) / Number(process.hrtime.bigint() - start))
  }
  return median(rounds)
}

/** The lease of a task running in this process, as the runner writes it (the file store keeps its lock between them). */
const lease = {
  token: "01a220b5-41e9-7080-884f-f28554064fdc",
  holder: Holder.self(),
  expiresAt: 1_800_000_000_000
}
const state = new Uint8Array(1050)

/** `store.update` of a 1 KiB state in a loop, as a checkpoint patches it, without the runner. */
const updateRate = (layer: Layer.Layer<TaskStore.TaskStore, unknown>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* TaskStore.TaskStore
      yield* store.create(runningRecord("a"))
      let revision = 1
      const update = (i: number) =>
        Effect.map(store.update("a", revision, { state, lease, progress: { done: i }, updatedAt: i }), (info) => {
          revision = info.revision
        })
      for (let i = 0; i < n; i++) yield* update(i) // warm-up
      const rounds: Array<number> = []
      for (let r = 0; r < 5; r++) {
        const start = process.hrtime.bigint()
        for (let i = 0; i < n / 5; i++) yield* update(i)
        rounds.push(((n / 5) * 1e9) / Number(process.hrtime.bigint() - start))
      }
      return median(rounds)
    }).pipe(Effect.provide(layer))
  )

const file = async () => {
  const { dir, cleanup } = scratchDir("breakdown-file")
  try {
    const raw = fileRaw(dir)
    const recipe = rate(() => raw.write(1))
    raw.close()
    const own = checkpointWritesFile(dir, () => state)
    const protocol = rate(() => own.write(1))
    own.close()
    const update = await updateRate(File.layer({ directory: join(dir, "store") }))
    const checkpoint = (await fileCheckpoints()).per_s
    return { recipe, protocol, update, checkpoint }
  } finally {
    cleanup()
  }
}

const sqlite = async () => {
  const { dir, cleanup } = scratchDir("breakdown-sqlite")
  try {
    const update = await updateRate(Sqlite.layer({ filename: join(dir, "store.db") }))
    // The store's statement straight on better-sqlite3, on the database the store created and migrated.
    const statement = checkpointWritesSqlite(join(dir, "store.db"), "vltask_tasks", () => state)
    const own = rate(() => statement.write(1))
    statement.close()
    const db = new Database(join(dir, "store.db"))
    db.pragma("synchronous = FULL")
    const blob = Buffer.from(state)
    db.exec("CREATE TABLE raw (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
    db.prepare("INSERT INTO raw VALUES ('a', 0, ?)").run(blob)
    const rawUpdate = db.prepare("UPDATE raw SET state = ?, revision = revision + 1 WHERE id = 'a'")
    const raw = rate(() => rawUpdate.run(blob))
    db.close()
    const checkpoint = (await sqliteCheckpoints()).per_s
    return { raw, own, update, checkpoint }
  } finally {
    cleanup()
  }
}

const postgres = async (url: string) => {
  const client = await connectedClient(url)
  if (client === undefined) return undefined
  const prefix = `vltask_bench_b${process.pid}_`
  try {
    const update = await updateRate(Postgres.layer({ url, tablePrefix: prefix }))
    // The store's statement on a plain client, prepared, on the table the store created and migrated.
    const statement = await checkpointWritesPostgres(url, `${prefix}tasks`, () => state)
    const own = await rateAsync(async () => statement!.write(1))
    await statement!.close()
    const blob = Buffer.from(state)
    await client.query(`CREATE TABLE ${prefix}raw (id TEXT PRIMARY KEY, revision INTEGER, state BYTEA)`)
    await client.query(`INSERT INTO ${prefix}raw VALUES ('a', 0, $1)`, [blob])
    const raw = await rateAsync(() =>
      client.query(`UPDATE ${prefix}raw SET state = $1, revision = revision + 1 WHERE id = 'a'`, [blob])
    )
    const checkpoint = (await postgresCheckpoints(url))?.per_s ?? 0
    return { raw, own, update, checkpoint }
  } finally {
    await client.end()
    await dropTables(url, prefix)
  }
}

/**
 * The same small piece of JavaScript (two JSON round trips of a record's metadata) timed warm, right after an fsync
 * on tmpfs (a system call that does not wait), and right after an fsync on the disk (one that blocks while the disk
 * works): what code between a store's system calls costs once the thread has slept.
 */
const afterFsync = () => {
  const { dir, cleanup } = scratchDir("breakdown-cold", true)
  const shm = fs.existsSync("/dev/shm") ? fs.mkdtempSync("/dev/shm/vltask-cold-") : undefined
  try {
    const info = {
      id: "01a22ca8-7d2c-74ad-8be0-4e397ff1b552",
      kind: "bench",
      status: "running",
      revision: 12,
      progress: { done: 5, total: 100 },
      lease,
      attempts: 1,
      createdAt: 1,
      updatedAt: 2
    }
    let sink = 0
    const work = () => {
      for (let i = 0; i < 2; i++) sink += (JSON.parse(JSON.stringify(info)) as { revision: number }).revision
    }
    const body = Buffer.alloc(100)
    const timed = (before: () => void) => {
      const each: Array<number> = []
      for (let i = 0; i < 2000; i++) {
        before()
        const start = process.hrtime.bigint()
        work()
        each.push(Number(process.hrtime.bigint() - start) / 1e3)
      }
      return median(each)
    }
    const fsyncOf = (path: string) => {
      const fd = fs.openSync(path, "w")
      return () => {
        fs.writeSync(fd, body, 0, body.length, 0)
        fs.fsyncSync(fd)
      }
    }
    const warm = timed(() => {})
    const tmpfs = shm === undefined ? undefined : timed(fsyncOf(join(shm, "f")))
    const disk = timed(fsyncOf(join(dir, "f")))
    return { warm, tmpfs, disk, sink }
  } finally {
    cleanup()
    if (shm !== undefined) fs.rmSync(shm, { recursive: true, force: true })
  }
}

const f = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: 0 })
const fileResult = await file()
process.stdout.write(
  `file   raw recipe ${f(fileResult.recipe)}/s | + the store's whole syscall protocol ${f(fileResult.protocol)}/s | store.update ${f(fileResult.update)}/s | task.checkpoint ${f(fileResult.checkpoint)}/s\n`
)
const sqliteResult = await sqlite()
process.stdout.write(
  `sqlite raw UPDATE ${f(sqliteResult.raw)}/s | the store's statement on better-sqlite3 ${f(sqliteResult.own)}/s | store.update ${f(sqliteResult.update)}/s | task.checkpoint ${f(sqliteResult.checkpoint)}/s\n`
)
const postgresUrl = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"
const postgresResult = await postgres(postgresUrl)
process.stdout.write(
  postgresResult === undefined
    ? `postgres: no server at ${postgresUrl}\n`
    : `postgres raw UPDATE ${f(postgresResult.raw)}/s | the store's statement, prepared, on pg ${f(postgresResult.own)}/s | store.update ${f(postgresResult.update)}/s | task.checkpoint ${f(postgresResult.checkpoint)}/s\n`
)
const gcFile = await largeState("file", true)
const gcSqlite = await largeState("sqlite", true)
process.stdout.write(
  `16 MiB state, GC forced after each checkpoint: peak RSS growth / state size file ${gcFile.rss_ratio.toFixed(1)}, SQLite ${gcSqlite.rss_ratio.toFixed(1)}\n`
)
const cold = afterFsync()
process.stdout.write(
  `the same JSON work (µs, median): warm ${cold.warm.toFixed(1)} | after an fsync on tmpfs ${cold.tmpfs?.toFixed(1) ?? "n/a"} | after an fsync on the disk ${cold.disk.toFixed(1)}\n`
)
