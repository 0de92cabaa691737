#!/usr/bin/env node
// Runs the CLI from its TypeScript sources (and lets it load a TypeScript vltask.config.ts) without a build step.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
