/**
 * @vectorlink/task: durable, resumable, observable long-running tasks on Effect.
 *
 * The stores live in their own entry points (`@vectorlink/task/TaskStore/File`, `…/Sqlite`, `…/Postgres`,
 * `…/StoreUrl` for a store named by a string), so importing this one loads no store driver.
 *
 * @since 0.1.0
 */
export * as Holder from "./Holder.js"
export * as Lease from "./Lease.js"
export * as Progress from "./Progress.js"
export * as Task from "./Task.js"
export * as TaskCodec from "./TaskCodec.js"
export * as TaskError from "./TaskError.js"
export * as TaskId from "./TaskId.js"
export * as TaskRecord from "./TaskRecord.js"
export * as TaskRunner from "./TaskRunner.js"
export * as TaskStore from "./TaskStore.js"
