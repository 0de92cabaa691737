/**
 * Capturing what code under test logs.
 */
import { Logger } from "effect"

/** A logger keeping the first part of every WARN message; provide `collect` in place of the default logger. */
export const warningCollector = () => {
  const warnings: Array<string> = []
  const collect = Logger.make<unknown, void>(({ logLevel, message }) => {
    if (logLevel.label === "WARN") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  return { warnings, collect }
}
