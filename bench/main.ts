/**
 * `npm run bench [-- --json]`: the library's overhead against the physical limit, measured on this machine in one
 * run. Prints a table; with `--json`, also one JSON object on the last line.
 */
import { fileCheckpoints, postgresCheckpoints, sqliteCheckpoints } from "./checkpoint.js"
import { cliStartup } from "./cli.js"
import { interruptLatency } from "./interrupt.js"
import { largeState, largeStateFloor } from "./largeState.js"
import { noopTasks } from "./noop.js"
import { fileList, sqliteList } from "./list.js"
import { progressOverhead } from "./progress.js"
import { workerBench } from "./worker.js"

const json = process.argv.includes("--json")
const started = Date.now()
const log = (text: string) => process.stderr.write(`${text}\n`)

log("progress overhead…")
const progress = await progressOverhead()
log("checkpoints, file store…")
const file = await fileCheckpoints()
log("checkpoints, SQLite store…")
const sqlite = await sqliteCheckpoints()
log("checkpoints, Postgres store…")
const postgresUrl = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"
const postgres = await postgresCheckpoints(postgresUrl)
if (postgres === undefined)
  log(`no Postgres server at ${postgresUrl}: its row is left empty (set VLTASK_BENCH_POSTGRES)`)
log("no-op tasks…")
const noopFile = await noopTasks("file")
const noopSqlite = await noopTasks("sqlite")
const noopPostgres = postgres === undefined ? undefined : await noopTasks("postgres", postgresUrl)
log("16 MiB state…")
const largeFile = await largeState("file")
const largeSqlite = await largeState("sqlite")
const largeBinaryFile = await largeState("file", false, true)
const largeBinarySqlite = await largeState("sqlite", false, true)
// The floors under them: the benchmark task's own loop with no store, and the same bytes written raw.
const floorTask = await largeStateFloor("task")
const floorFile = await largeStateFloor("file")
const floorSqlite = await largeStateFloor("sqlite")
const floorBinaryFile = await largeStateFloor("file", true)
const floorBinarySqlite = await largeStateFloor("sqlite", true)
log("listing…")
const sqliteListMs = await sqliteList()
const fileListMs = await fileList()
log("interrupt latency…")
const interruptFile = await interruptLatency("file")
const interruptSqlite = await interruptLatency("sqlite")
const interruptPostgres = postgres === undefined ? undefined : await interruptLatency("postgres", 5, postgresUrl)

log("workers, Postgres…")
const worker = postgres === undefined ? undefined : await workerBench(postgresUrl)

log("CLI startup…")
const cli = await cliStartup()

const heartbeatMs = 1000
const result = {
  effect_step_ns: progress.effect_step_ns,
  progress_ns_per_call: progress.progress_ns_per_call,
  progress_sync_ns_per_call: progress.progress_sync_ns_per_call,
  file_checkpoints_per_s: file.per_s,
  file_raw_per_s: file.raw_per_s,
  file_checkpoint_vs_limit: file.ratio,
  file_floor_vs_limit: file.floor_ratio,
  file_protocol_floor_vs_limit: file.statement_ratio ?? null,
  sqlite_checkpoints_per_s: sqlite.per_s,
  sqlite_raw_per_s: sqlite.raw_per_s,
  sqlite_checkpoint_vs_raw: sqlite.ratio,
  sqlite_floor_vs_raw: sqlite.floor_ratio,
  sqlite_statement_floor_vs_raw: sqlite.statement_ratio ?? null,
  postgres_checkpoints_per_s: postgres?.per_s ?? null,
  postgres_raw_per_s: postgres?.raw_per_s ?? null,
  postgres_checkpoint_vs_raw: postgres?.ratio ?? null,
  postgres_floor_vs_raw: postgres?.floor_ratio ?? null,
  postgres_statement_floor_vs_raw: postgres?.statement_ratio ?? null,
  noop_file_tasks_per_s: noopFile!.tasks_per_s,
  noop_file_vs_raw: noopFile!.vs_raw,
  noop_file_floor_vs_raw: noopFile!.floor_vs_raw,
  noop_sqlite_tasks_per_s: noopSqlite!.tasks_per_s,
  noop_sqlite_vs_raw: noopSqlite!.vs_raw,
  noop_sqlite_floor_vs_raw: noopSqlite!.floor_vs_raw,
  noop_postgres_tasks_per_s: noopPostgres?.tasks_per_s ?? null,
  noop_postgres_vs_raw: noopPostgres?.vs_raw ?? null,
  noop_postgres_floor_vs_raw: noopPostgres?.floor_vs_raw ?? null,
  large_state_file_mb_s: largeFile.mb_s,
  large_state_sqlite_mb_s: largeSqlite.mb_s,
  large_state_file_rss_ratio: largeFile.rss_ratio,
  large_state_sqlite_rss_ratio: largeSqlite.rss_ratio,
  large_state_rss_ratio: Math.max(largeFile.rss_ratio, largeSqlite.rss_ratio),
  large_state_binary_file_mb_s: largeBinaryFile.mb_s,
  large_state_binary_sqlite_mb_s: largeBinarySqlite.mb_s,
  large_state_binary_rss_ratio: Math.max(largeBinaryFile.rss_ratio, largeBinarySqlite.rss_ratio),
  large_state_task_alone_rss_ratio: floorTask.rss_ratio,
  large_state_raw_file_rss_ratio: floorFile.rss_ratio,
  large_state_raw_sqlite_rss_ratio: floorSqlite.rss_ratio,
  large_state_file_vs_raw: largeFile.mb_s / floorFile.mb_s,
  large_state_sqlite_vs_raw: largeSqlite.mb_s / floorSqlite.mb_s,
  large_state_binary_file_vs_raw: largeBinaryFile.mb_s / floorBinaryFile.mb_s,
  large_state_binary_sqlite_vs_raw: largeBinarySqlite.mb_s / floorBinarySqlite.mb_s,
  sqlite_list_ms: sqliteListMs,
  file_list_ms: fileListMs,
  interrupt_file_ms: interruptFile.median,
  interrupt_sqlite_ms: interruptSqlite.median,
  interrupt_postgres_ms: interruptPostgres?.median ?? null,
  interrupt_ms: Math.max(interruptFile.median, interruptSqlite.median, interruptPostgres?.median ?? 0),
  interrupt_max_ms: Math.max(interruptFile.max, interruptSqlite.max, interruptPostgres?.max ?? 0),
  worker_postgres_tasks_per_s: worker?.tasks_per_s ?? null,
  worker_postgres_vs_raw: worker?.vs_raw ?? null,
  worker_claim_latency_ms: worker?.claim_latency_ms ?? null,
  takeover_same_host_ms: worker?.takeover_same_host_ms ?? null,
  cli_startup_ms: cli.cli_startup_ms,
  cli_list_ms: cli.cli_list_ms,
  seconds: (Date.now() - started) / 1000
}

const f = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ok = (pass: boolean) => (pass ? "ok" : "MISSED")
const rows: Array<[string, string, string, string]> = [
  ["effect_step_ns", f(result.effect_step_ns), "one cheap Effect step (reference)", ""],
  [
    "progress_ns_per_call",
    f(result.progress_ns_per_call),
    `≤ one Effect step (${f(result.effect_step_ns)})`,
    ok(result.progress_ns_per_call <= result.effect_step_ns)
  ],
  [
    "progress_sync_ns_per_call",
    f(result.progress_sync_ns_per_call, 2),
    "≤ 5",
    ok(result.progress_sync_ns_per_call <= 5)
  ],
  ["file_checkpoints_per_s", f(result.file_checkpoints_per_s, 0), `raw recipe ${f(result.file_raw_per_s, 0)}/s`, ""],
  [
    "file_checkpoint_vs_limit",
    f(result.file_checkpoint_vs_limit, 2),
    `≥ 0.90 (the floor, raw writes with the state encoded between them: ${f(result.file_floor_vs_limit, 2)}; the store's own system calls made raw, lock included: ${f(result.file_protocol_floor_vs_limit ?? 0, 2)})`,
    ok(result.file_checkpoint_vs_limit >= 0.9)
  ],
  [
    "sqlite_checkpoints_per_s",
    f(result.sqlite_checkpoints_per_s, 0),
    `raw UPDATE ${f(result.sqlite_raw_per_s, 0)}/s`,
    ""
  ],
  [
    "sqlite_checkpoint_vs_raw",
    f(result.sqlite_checkpoint_vs_raw, 2),
    `≥ 0.85 (the floor: ${f(result.sqlite_floor_vs_raw, 2)}; the store's own statement made raw: ${f(result.sqlite_statement_floor_vs_raw ?? 0, 2)})`,
    ok(result.sqlite_checkpoint_vs_raw >= 0.85)
  ],
  ...(postgres === undefined
    ? [["postgres_checkpoint_vs_raw", "n/a", "≥ 0.85 (no server)", ""] as [string, string, string, string]]
    : ([
        ["postgres_checkpoints_per_s", f(postgres.per_s, 0), `raw UPDATE ${f(postgres.raw_per_s, 0)}/s`, ""],
        [
          "postgres_checkpoint_vs_raw",
          f(postgres.ratio, 2),
          `≥ 0.85 (the floor: ${f(postgres.floor_ratio, 2)}; the store's own statement made raw: ${f(postgres.statement_ratio ?? 0, 2)})`,
          ok(postgres.ratio >= 0.85)
        ]
      ] as Array<[string, string, string, string]>)),
  ...(
    [
      ["file", noopFile],
      ["sqlite", noopSqlite],
      ["postgres", noopPostgres]
    ] as const
  ).flatMap(([store, noop]): Array<[string, string, string, string]> =>
    noop === undefined
      ? [[`noop_${store}_vs_raw`, "n/a", "≥ 0.40 (no server)", ""]]
      : [
          [`noop_${store}_tasks_per_s`, f(noop.tasks_per_s, 0), `raw write ${f(noop.raw_per_s, 0)}/s`, ""],
          [
            `noop_${store}_vs_raw`,
            f(noop.vs_raw, 2),
            `≥ 0.40 (sequential run of a no-op task; the floor, its two writes raw: ${f(noop.floor_vs_raw, 2)})`,
            ok(noop.vs_raw >= 0.4)
          ]
        ]
  ),
  ["large_state_file_mb_s", f(result.large_state_file_mb_s), "16 MiB state, 20 checkpoints", ""],
  ["large_state_sqlite_mb_s", f(result.large_state_sqlite_mb_s), "16 MiB state, 20 checkpoints", ""],
  [
    "large_state_rss_ratio",
    f(result.large_state_rss_ratio, 2),
    `≤ 3 (file ${f(result.large_state_file_rss_ratio, 2)}, SQLite ${f(result.large_state_sqlite_rss_ratio, 2)})`,
    ok(result.large_state_rss_ratio <= 3)
  ],
  [
    "large_state_raw_*_rss_ratio",
    `${f(result.large_state_raw_file_rss_ratio, 2)} / ${f(result.large_state_raw_sqlite_rss_ratio, 2)}`,
    `the same task writing raw, file / SQLite (the task alone: ${f(result.large_state_task_alone_rss_ratio, 2)})`,
    ""
  ],
  [
    "large_state_*_vs_raw",
    `${f(result.large_state_file_vs_raw, 2)} / ${f(result.large_state_sqlite_vs_raw, 2)}`,
    "≥ 0.8: MB/s against the same bytes written raw, file / SQLite",
    ok(Math.min(result.large_state_file_vs_raw, result.large_state_sqlite_vs_raw) >= 0.8)
  ],
  [
    "large_state_binary_*_vs_raw",
    `${f(result.large_state_binary_file_vs_raw, 2)} / ${f(result.large_state_binary_sqlite_vs_raw, 2)}`,
    "≥ 0.8 (as a Uint8Array)",
    ok(Math.min(result.large_state_binary_file_vs_raw, result.large_state_binary_sqlite_vs_raw) >= 0.8)
  ],
  [
    "large_state_binary_rss_ratio",
    f(result.large_state_binary_rss_ratio, 2),
    `a 16 MiB Uint8Array instead of a string (file ${f(largeBinaryFile.rss_ratio, 2)} at ${f(
      largeBinaryFile.mb_s,
      0
    )} MB/s, SQLite ${f(largeBinarySqlite.rss_ratio, 2)} at ${f(largeBinarySqlite.mb_s, 0)} MB/s)`,
    ""
  ],
  [
    "sqlite_list_ms",
    f(result.sqlite_list_ms, 2),
    "≤ 20 (first 50 of 100,000 by status)",
    ok(result.sqlite_list_ms <= 20)
  ],
  ["file_list_ms", f(result.file_list_ms), "≤ 1,000 (first 50 of 10,000 by status)", ok(result.file_list_ms <= 1000)],
  [
    "interrupt_file_ms",
    f(result.interrupt_file_ms, 0),
    "≤ 100 (median; cancel → the owner's finalizer)",
    ok(result.interrupt_file_ms <= 100)
  ],
  ["interrupt_sqlite_ms", f(result.interrupt_sqlite_ms, 0), "≤ 100", ok(result.interrupt_sqlite_ms <= 100)],
  result.interrupt_postgres_ms === null
    ? ["interrupt_postgres_ms", "n/a", "≤ 100 (no server)", ""]
    : ["interrupt_postgres_ms", f(result.interrupt_postgres_ms, 0), "≤ 100", ok(result.interrupt_postgres_ms <= 100)],
  [
    "interrupt_max_ms",
    f(result.interrupt_max_ms, 0),
    `worst of every store; ≤ heartbeat + 100 = ${heartbeatMs + 100} even where changes cannot be heard`,
    ok(result.interrupt_max_ms <= heartbeatMs + 100)
  ],
  ...(worker === undefined
    ? [["worker_postgres_vs_raw", "n/a", "≥ 0.25 (no server)", ""] as [string, string, string, string]]
    : ([
        [
          "worker_postgres_tasks_per_s",
          f(worker.tasks_per_s, 0),
          `2,000 queued no-op tasks, one worker at concurrency 16; raw UPDATE ${f(worker.raw_per_s, 0)}/s`,
          ""
        ],
        ["worker_postgres_vs_raw", f(worker.vs_raw, 2), "≥ 0.25", ok(worker.vs_raw >= 0.25)],
        [
          "worker_claim_latency_ms",
          f(worker.claim_latency_ms, 1),
          "≤ 20 (median; submit → start on an idle worker)",
          ok(worker.claim_latency_ms <= 20)
        ],
        [
          "takeover_same_host_ms",
          f(worker.takeover_same_host_ms, 0),
          "≤ 1,000 (median; SIGKILL → resumed by an idle worker with takeover)",
          ok(worker.takeover_same_host_ms <= 1000)
        ]
      ] as Array<[string, string, string, string]>)),
  ["cli_startup_ms", f(result.cli_startup_ms, 0), "≤ 150 (vltask --version)", ok(result.cli_startup_ms <= 150)],
  [
    "cli_list_ms",
    f(result.cli_list_ms, 0),
    "≤ 400 (vltask list, file store, TypeScript config)",
    ok(result.cli_list_ms <= 400)
  ]
]
const widths = [0, 1, 2].map((c) =>
  Math.max(...rows.map((r) => r[c]!.length), ["figure", "value", "target"][c]!.length)
)
const line = (r: ReadonlyArray<string>) =>
  r
    .map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell))
    .join("  ")
    .trimEnd()
process.stdout.write(`${line(["figure", "value", "target", ""])}\n${rows.map(line).join("\n")}\n`)
process.stdout.write(`(median of repeated runs; ${f(result.seconds, 0)} s; node ${process.version})\n`)
if (json) process.stdout.write(`${JSON.stringify(result)}\n`)
