#!/usr/bin/env node
// Runs cargo with `--target <host>`, the same target directory that `napi build` uses, so the
// test loop and the addon build share compiled dependencies. Usage: node scripts/cargo.js test
'use strict'
const { execFileSync, spawnSync } = require('child_process')

const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' })
  .split('\n')
  .find((l) => l.startsWith('host:'))
  .slice('host:'.length)
  .trim()
const [sub, ...rest] = process.argv.slice(2)
const r = spawnSync('cargo', [sub, '--target', host, ...rest], { stdio: 'inherit' })
process.exit(r.status === null ? 1 : r.status)
