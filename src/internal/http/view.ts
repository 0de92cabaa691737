/** A task as the HTTP API shows it: its metadata, whether its runner is gone, whether it can be resumed. */
import type * as TaskRecord from "../../TaskRecord.js"
import type { TaskRunner } from "../../TaskRunner.js"

/** A task as the API shows it (`TaskHttp.TaskView`). */
export const view = (runner: TaskRunner["Type"], info: TaskRecord.TaskInfo, now: number) => {
  const stale = runner.isStale(info, now)
  const { lease, ...rest } = info
  return {
    ...rest,
    // The fencing token stays with the runner.
    ...(lease === undefined ? {} : { lease: { holder: lease.holder, expiresAt: lease.expiresAt } }),
    stale,
    resumable: info.status === "paused" || info.status === "pending" || info.status === "failed" || stale
  }
}
