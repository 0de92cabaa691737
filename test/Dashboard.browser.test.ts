/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real server over a real
 * file store: give the token, start a task from the form, see its bar move, pause it, see "paused", resume it, see
 * "completed" and its result; then the same page on a phone-sized screen. Screenshots go to `test/artifacts/`
 * (ignored by git); the assertions are on the DOM, not on pixels. Outside CI a machine without Chromium skips it and
 * says why; under `CI=true` it must run (`.ci/run` installs Chromium).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { type Browser, chromium } from "playwright-core"
import { Task, TaskRunner } from "../src/index.js"
import * as TaskHttp from "../src/TaskHttp.js"
import * as File from "../src/TaskStore/File.js"

const executablePath = process.env.VLTASK_CHROMIUM ?? "/usr/bin/chromium"
const available = existsSync(executablePath)
if (!available) {
  if (process.env.CI === "true") throw new Error(`CI=true but no Chromium at ${executablePath}: .ci/run installs it`)
  console.warn(`Skipping the dashboard's browser test: no Chromium at ${executablePath} (apt-get install chromium).`)
}
const artifacts = resolve(import.meta.dirname, "artifacts")

/** Counts to `to`, `ms` per step, checkpointing every 5 steps. */
const Count = Task.make({
  name: "count",
  input: Schema.Struct({ to: Schema.Int, ms: Schema.Int }),
  state: Schema.Struct({ i: Schema.Int }),
  success: Schema.Struct({ counted: Schema.Int }),
  initial: () => ({ i: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      yield* task.total(input.to)
      task.setDone(task.state.i)
      for (let i = task.state.i; i < input.to;) {
        yield* Effect.sleep(input.ms)
        i++
        yield* task.progress(1)
        if (i % 5 === 0) yield* task.checkpoint({ i })
      }
      yield* Effect.log(`counted to ${input.to}`)
      return { counted: input.to }
    })
})

let browser: Browser | undefined
let scope: Scope.CloseableScope
let base = ""
let dir = ""

beforeAll(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), "vltask-dashboard-"))
  scope = Effect.runSync(Scope.make())
  const runner = TaskRunner.layer({ tasks: [Count], flushInterval: "200 millis" }).pipe(
    Layer.provideMerge(File.layer({ directory: dir }))
  )
  const context = await Effect.runPromise(
    Layer.buildWithScope(
      TaskHttp.serve({ tasks: [Count], port: 0, token: "s3cret" }).pipe(Layer.provide(runner)),
      scope
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
  base = `http://127.0.0.1:${address.port}`
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // As this machine needs them: no sandbox as root, and no background traffic to a closed network.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  mkdirSync(artifacts, { recursive: true })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!available)("dashboard in Chromium", () => {
  it("token, start from the form, the bar moves, pause, resume, completed with its result; usable on a phone", async () => {
    const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } })
    const problems: Array<string> = []
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().includes("401")) problems.push(`console: ${m.text()}`)
    })
    await page.goto(`${base}/`)
    // The server wants a token: the page asks for it.
    await page.locator("#auth").waitFor({ state: "visible" })
    await page.fill("#token", "s3cret")
    await page.click("#auth-form button")
    await page.locator("#start").waitFor({ state: "visible" })
    assert.deepStrictEqual(await page.locator("#kind option").allTextContents(), ["count"])

    await page.fill("#input", JSON.stringify({ to: 80, ms: 40 }))
    await page.fill("#task-id", "ui-1")
    await page.click("#start-button")
    await page.locator("#detail").waitFor({ state: "visible" })
    assert.strictEqual(await page.textContent("#d-id"), "ui-1")
    // The bar moves: its value grows while the task runs (from the task's event stream).
    const value = () => page.$eval("#d-bar", (bar) => (bar as HTMLProgressElement).value)
    await page.waitForFunction(() => (document.getElementById("d-bar") as HTMLProgressElement).value >= 5)
    const first = await value()
    await page.waitForFunction((v) => (document.getElementById("d-bar") as HTMLProgressElement).value > v, first)
    assert.isAbove(await value(), first)
    // The table's row moves too (from the list's event stream).
    await page.waitForFunction(() => {
      const row = document.querySelector('tr[data-id="ui-1"] progress') as HTMLProgressElement | null
      return row !== null && row.value > 0
    })
    await page.screenshot({ path: join(artifacts, "dashboard-running.png"), fullPage: true })

    await page.click('#d-actions button[data-action="pause"]')
    await page.waitForFunction(() => document.getElementById("d-status")!.textContent === "paused")
    await page.waitForFunction(
      () => document.querySelector('tr[data-id="ui-1"]')?.getAttribute("data-status") === "paused"
    )
    const pausedAt = await value()
    assert.isBelow(pausedAt, 80)

    await page.click('#d-actions button[data-action="resume"]')
    await page.waitForFunction(() => document.getElementById("d-status")!.textContent === "completed", undefined, {
      timeout: 20_000
    })
    await page.waitForFunction(() => (document.getElementById("d-result")!.textContent ?? "").includes("counted"))
    assert.deepStrictEqual(JSON.parse((await page.textContent("#d-result"))!), { counted: 80 })
    assert.strictEqual(await value(), 80)
    await page.waitForFunction(() => (document.getElementById("d-logs")!.textContent ?? "").includes("counted to 80"))
    await page.screenshot({ path: join(artifacts, "dashboard-completed.png"), fullPage: true })

    // A phone-sized screen: nothing wider than the screen, the row and its buttons still there.
    await page.setViewportSize({ width: 390, height: 844 })
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth
    )
    assert.isAtMost(overflow, 0, "no horizontal scrolling on a phone")
    assert.isTrue(await page.locator('tr[data-id="ui-1"] button[data-action="cancel"]').isVisible())
    await page.screenshot({ path: join(artifacts, "dashboard-phone.png"), fullPage: true })
    assert.deepStrictEqual(problems, [])
  }, 60_000)
})
