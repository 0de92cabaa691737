/**
 * Scale: the first page (50) of tasks by status, from SQLite with 100,000 records and from the file store with 10,000.
 * Records are laid down in bulk (one transaction; plain file writes) — the setup is not what is measured.
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import * as File from "../src/TaskStore/File.js"
import * as RecordFile from "../src/internal/file/recordFile.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { median, scratchDir } from "./util.js"

const statuses: ReadonlyArray<TaskRecord.Status> = ["pending", "running", "paused", "completed", "failed", "cancelled"]

const record = (i: number): TaskRecord.TaskRecord => ({
  id: `task-${String(i).padStart(7, "0")}`,
  kind: i % 3 === 0 ? "embed" : "index",
  status: statuses[i % statuses.length]!,
  revision: 1,
  progress: { done: i, total: 1000 },
  attempts: 1,
  createdAt: 1_700_000_000_000 + i,
  updatedAt: 1_700_000_000_000 + i,
  input: Buffer.from(`{"n":${i}}`),
  state: Buffer.alloc(256, 1)
})

const timeList = (store: TaskStore.TaskStore["Type"], runs: number) =>
  Effect.gen(function* () {
    const times: Array<number> = []
    for (let r = 0; r < runs; r++) {
      const start = process.hrtime.bigint()
      const page = yield* store.list({ status: "paused", limit: 50 })
      times.push(Number(process.hrtime.bigint() - start) / 1e6)
      if (page.items.length !== 50 || page.next === undefined) return yield* Effect.dieMessage("short page")
    }
    return median(times)
  })

export const sqliteList = async (records = 100_000) => {
  const { dir, cleanup } = scratchDir("sqlite-list")
  try {
    const filename = join(dir, "list.db")
    // Let the store create its schema, then fill it in one transaction.
    await Effect.runPromise(
      Effect.flatMap(TaskStore.TaskStore, (s) => s.list()).pipe(Effect.provide(Sqlite.layer({ filename })))
    )
    const db = new Database(filename)
    const insert = db.prepare(
      `INSERT INTO vltask_tasks (id, kind, status, revision, progress, attempts, created_at, updated_at, input, state)
       VALUES (?, ?, ?, 1, ?, 1, ?, ?, ?, ?)`
    )
    db.transaction(() => {
      for (let i = 0; i < records; i++) {
        const r = record(i)
        insert.run(r.id, r.kind, r.status, JSON.stringify(r.progress), r.createdAt, r.updatedAt, r.input, r.state)
      }
    })()
    db.close()
    return await Effect.runPromise(
      Effect.flatMap(TaskStore.TaskStore, (s) => timeList(s, 21)).pipe(Effect.provide(Sqlite.layer({ filename })))
    )
  } finally {
    cleanup()
  }
}

export const fileList = async (records = 10_000) => {
  const { dir, cleanup } = scratchDir("file-list")
  try {
    mkdirSync(join(dir, "tasks"))
    for (let i = 0; i < records; i++) {
      const r = record(i)
      writeFileSync(join(dir, "tasks", `${r.id}.task`), Buffer.concat(RecordFile.encode(r).chunks))
    }
    return await Effect.runPromise(
      Effect.flatMap(TaskStore.TaskStore, (s) => timeList(s, 7)).pipe(Effect.provide(File.layer({ directory: dir })))
    )
  } finally {
    cleanup()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("sqlite_list_ms", await sqliteList())
  console.log("file_list_ms", await fileList())
}
