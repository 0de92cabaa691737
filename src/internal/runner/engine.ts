/**
 * What every part of the runner shares: the store, this process as a holder, the resolved options, the task registry
 * and the table of tasks running here.
 */
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Holder from "../../Holder.js"
import * as Lease from "../../Lease.js"
import type * as Task from "../../Task.js"
import { TaskKindMismatch, UnknownTaskKind } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { Options } from "../../TaskRunner.js"
import { defaultKeepLogs, TaskStore } from "../../TaskStore.js"
import { isHeldHere, type Running } from "./running.js"
import * as AtOnce from "../atOnce.js"

/** The shared state of one runner. */
export interface Engine {
  readonly store: TaskStore["Type"]
  /** The store's write made at once, where it has one (`AtOnce`). */
  readonly writeAtOnce: AtOnce.Write | undefined
  /** The store's write issued at once and answered later, where it has one (`AtOnce`). */
  readonly writeAsync: AtOnce.WriteAsync | undefined
  /** This process, as it signs its leases. */
  readonly me: Holder.Holder
  /** The runner's scope: task fibers live in it, and are paused when it closes. */
  readonly scope: Scope.Scope
  /** The services the runner was built with, given to tasks resumed by id. */
  readonly captured: Context.Context<never>
  readonly registry: Map<string, Task.Any>
  readonly running: Map<string, Running>
  readonly defaultLeaseMs: number
  readonly flushMs: number
  readonly awaitMs: number
  readonly keepLogs: number
  readonly interestTimeout: Duration.DurationInput | undefined
  /** The workers of this runner, woken by a submit here (a store cannot always tell a connection its own writes). */
  readonly wakers: Set<Effect.Effect<void>>
}

/** A duration in milliseconds. */
export const toMillis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

/** Builds the engine over the `TaskStore` in context. */
export const make = (options: Options): Effect.Effect<Engine, never, TaskStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* TaskStore
    return {
      store,
      writeAtOnce: AtOnce.writeOf(store),
      writeAsync: AtOnce.writeAsyncOf(store),
      me: Holder.self(options.host),
      scope: yield* Effect.scope,
      captured: yield* Effect.context<never>(),
      registry: new Map<string, Task.Any>(options.tasks.map((t) => [t.name, t])),
      running: new Map<string, Running>(),
      defaultLeaseMs: toMillis(options.leaseDuration ?? "30 seconds"),
      flushMs: toMillis(options.flushInterval ?? "1 second"),
      awaitMs: toMillis(options.awaitInterval ?? "250 millis"),
      keepLogs: options.keepLogs ?? defaultKeepLogs,
      interestTimeout: options.interestTimeout,
      wakers: new Set<Effect.Effect<void>>()
    }
  })

/**
 * True when a running task's lease can be taken over, seen from this runner (its host, its process): expired, held by
 * a dead process on this host, or signed by this very process and held by none of its runners (a run here ended
 * without clearing it, e.g. when the store failed): this process will never renew it, so nobody waits it out.
 */
export const isStale = (engine: Engine, info: TaskRecord.TaskInfo, now: number): boolean =>
  Lease.isStale(info, now, engine.me) ||
  (info.status === "running" &&
    info.lease !== undefined &&
    info.lease.holder.pid === engine.me.pid &&
    info.lease.holder.processStart === engine.me.processStart &&
    info.lease.holder.host === engine.me.host &&
    !isHeldHere(info.lease.token))

/** The definition of `kind`, or `UnknownTaskKind`. */
export const lookupKind = (engine: Engine, kind: string, id?: string) => {
  const task = engine.registry.get(kind)
  return task === undefined
    ? Effect.fail(
        new UnknownTaskKind({ kind, known: Array.from(engine.registry.keys()), ...(id === undefined ? {} : { id }) })
      )
    : Effect.succeed(task)
}

/** Remembers a definition a caller used, so the task can be resumed here by id. */
export const register = (engine: Engine, task: Task.Any): void => {
  if (!engine.registry.has(task.name)) engine.registry.set(task.name, task)
}

/** Fails unless the stored task is of `task`'s kind. */
export const checkKind = (task: Task.Any, info: TaskRecord.TaskInfo) =>
  info.kind === task.name
    ? Effect.void
    : Effect.fail(new TaskKindMismatch({ id: info.id, expected: task.name, found: info.kind }))

/** How the holder of a running task is described to people, with the time its lease has left. */
export const describeHolder = (info: TaskRecord.TaskInfo, now: number) =>
  info.lease === undefined
    ? "no lease"
    : `${Holder.describe(info.lease.holder)}; its lease expires in ${Duration.format(
        Duration.millis(Math.max(0, info.lease.expiresAt - now))
      )}`
