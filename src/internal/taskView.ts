/** A task as the CLI's `--json` and the HTTP API show it: its metadata, whether its runner is gone, whether it can be resumed. */
import type * as TaskRecord from "../TaskRecord.js"
import type { TaskRunner } from "../TaskRunner.js"

/** The metadata with `stale` (its runner is gone) and `resumable` (paused, pending, failed or stale), seen at `now`. */
export const taskView = (runner: TaskRunner["Type"], info: TaskRecord.TaskInfo, now: number) => {
  const stale = runner.isStale(info, now)
  return {
    ...info,
    stale,
    resumable: info.status === "paused" || info.status === "pending" || info.status === "failed" || stale
  }
}
