/**
 * Progress as Server-Sent Events. A task's: a `status` event at once and whenever it changes (looked at every 250 ms;
 * each look counts as interest, as a poll does), and one `end` event when it has completed, failed or been cancelled.
 * A list's: a `tasks` event with the page whenever a row changes.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as TaskRecord from "../../TaskRecord.js"
import type { TaskRunner } from "../../TaskRunner.js"
import { view } from "./view.js"

/** How often the stream looks at the task. */
export const eventInterval = "250 millis"

const encoder = new TextEncoder()

/** One event in the wire format. */
const event = (name: string, data: unknown) => encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

const final = (status: TaskRecord.Status) => status === "completed" || status === "failed" || status === "cancelled"

/** What a look shows: a new event only when one of these moved. */
const same = (a: TaskRecord.TaskInfo, b: TaskRecord.TaskInfo) =>
  a.status === b.status &&
  a.revision === b.revision &&
  a.progress.done === b.progress.done &&
  a.progress.total === b.progress.total &&
  a.progress.message === b.progress.message

/** The key a look at a list is compared by: what its rows show. */
const pageKey = (page: TaskRecord.Page) =>
  JSON.stringify([
    page.next,
    page.items.map((i) => [i.id, i.status, i.revision, i.progress.done, i.progress.total, i.progress.message])
  ])

/**
 * A page of tasks as Server-Sent Events: a `tasks` event at once and whenever a row changes (looked at every 250 ms),
 * until the client goes away. One connection for a whole table of progress bars.
 */
export const listEvents = (runner: TaskRunner["Type"], filter: TaskRecord.ListFilter): Stream.Stream<Uint8Array> =>
  Stream.repeatEffectWithSchedule(Effect.either(runner.list(filter)), Schedule.spaced(eventInterval)).pipe(
    // A failed look is skipped: the next one may succeed.
    Stream.filterMap(Either.getRight),
    Stream.changesWith((a, b) => pageKey(a) === pageKey(b)),
    Stream.mapEffect((page) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        event("tasks", { ...page, items: page.items.map((i) => view(runner, i, now)) })
      )
    )
  )

/** The events of task `id`, until it ends (or the client goes away). */
export const events = (runner: TaskRunner["Type"], id: string): Stream.Stream<Uint8Array> =>
  Stream.repeatEffectWithSchedule(
    // A poll: a dashboard watching a task is someone interested in it.
    Effect.either(runner.poll(id)),
    Schedule.spaced(eventInterval)
  ).pipe(
    // A task deleted meanwhile ends the stream.
    Stream.takeWhile(Either.isRight),
    Stream.filterMap(Either.getRight),
    Stream.changesWith(same),
    Stream.takeUntil((info) => final(info.status)),
    Stream.mapEffect((info) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const shown = view(runner, info, now)
        return final(info.status) ? [event("status", shown), event("end", shown)] : [event("status", shown)]
      })
    ),
    Stream.flattenIterables
  )
