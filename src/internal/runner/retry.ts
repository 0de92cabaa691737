/**
 * Retries of failed runs: whether a task's policy grants another attempt, and when it may start (the policy's
 * `Schedule`, stepped as many times as retries were made).
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type * as Task from "../../Task.js"

/** 1 s, doubling, each delay jittered (between 80% and 120%). */
export const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.jittered(Schedule.exponential("1 second"))

/**
 * The delay before retry number `retry` (1 for the first) under `policy`, in ms; `undefined` when the policy grants
 * no such retry (its `times` are used up, or its schedule is done).
 */
export const retryDelay = (
  policy: Task.Retry | undefined,
  retry: number,
  now: number
): Effect.Effect<number | undefined> =>
  Effect.gen(function* () {
    if (policy === undefined || retry > Math.floor(policy.times)) return undefined
    const schedule = policy.schedule ?? defaultSchedule
    let state: unknown = schedule.initial
    let delay = 0
    for (let i = 0; i < retry; i++) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return undefined
      state = next
      delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
    }
    return delay
  })
