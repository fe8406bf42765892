#!/usr/bin/env node
// A small Reshuffle app that counts visits with update() and keeps its state in a datastore.
//
//   npm run example            # SQLite file ./reshuffle-example.db in the working folder
//   npm run example -- --pg    # PostgreSQL, from the PG* variables (also chosen when PGHOST is set)
//
// The main process runs four worker processes; each starts its own Reshuffle app on the same
// store and handles 250 'visit' events, whose handler does `update('visits', n => n + 1)`.
// Nothing is lost: the count grows by exactly 1,000 per run, and it survives a restart (run the
// example again and it goes on from where it was).
'use strict'
const { fork } = require('child_process')
const path = require('path')
const { Reshuffle, CustomEventConnector } = require('reshuffle')
const { SQLStoreAdapter } = require('..')

const WORKERS = 4
const VISITS_PER_WORKER = 250
const usePostgres = process.argv.includes('--pg') || (!!process.env.PGHOST && !process.argv.includes('--sqlite'))

function openStore() {
  if (usePostgres) {
    // A pg-style config object: missing settings come from PGHOST, PGUSER, … as with `new Pool()`.
    return new SQLStoreAdapter({}, 'reshuffle_example')
  }
  return new SQLStoreAdapter(path.resolve('reshuffle-example.db'), 'reshuffle_example')
}

async function worker() {
  const app = new Reshuffle()
  const store = app.setPersistentStore(openStore())
  const events = new CustomEventConnector(app)
  events.on({ channel: 'visit' }, async (event, app) => {
    await app.getPersistentStore().update('visits', async (n = 0) => {
      await new Promise((resolve) => setImmediate(resolve)) // a handler that does some I/O
      return n + 1
    })
  })
  app.start()
  await Promise.all(Array.from({ length: VISITS_PER_WORKER }, (_, i) => events.fire('visit', { i })))
  await store.close()
}

async function main() {
  const where = usePostgres
    ? `PostgreSQL (table reshuffle_example)`
    : `SQLite (${path.resolve('reshuffle-example.db')})`
  const store = openStore()
  const before = (await store.get('visits')) || 0
  console.log(`Store: ${where}`)
  console.log(`Visits so far: ${before}`)
  console.log(`Starting ${WORKERS} worker processes, ${VISITS_PER_WORKER} visits each…`)
  const exits = Array.from({ length: WORKERS }, () => {
    const child = fork(__filename, ['--worker', ...process.argv.slice(2)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    return new Promise((resolve) => child.on('exit', resolve))
  })
  const codes = await Promise.all(exits)
  const after = await store.get('visits')
  await store.close()
  const lost = before + WORKERS * VISITS_PER_WORKER - after
  console.log(`Visits now: ${after} (+${after - before}); lost updates: ${lost}`)
  console.log(JSON.stringify({ before, after, lost, workersOk: codes.every((c) => c === 0) }))
  if (lost !== 0 || codes.some((c) => c !== 0)) process.exit(1)
  console.log('Run it again: the count goes on from here.')
}

;(process.argv.includes('--worker') ? worker() : main()).catch((e) => {
  console.error(e)
  process.exit(1)
})
