/** A task as the HTTP API shows it: as the CLI's `--json` does, without the lease's fencing token. */
import type * as TaskRecord from "../../TaskRecord.js"
import type { TaskRunner } from "../../TaskRunner.js"
import { taskView } from "../taskView.js"

/** A task as the API shows it (`TaskHttp.TaskView`): the fencing token stays with its runner. */
export const view = (runner: TaskRunner["Type"], info: TaskRecord.TaskInfo, now: number) => {
  const { lease, ...rest } = taskView(runner, info, now)
  return lease === undefined ? rest : { ...rest, lease: { holder: lease.holder, expiresAt: lease.expiresAt } }
}
