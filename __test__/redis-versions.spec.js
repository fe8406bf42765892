// The Redis engine on the servers it supports besides the machine's Redis 7 (redis.spec.js):
// Valkey 8 and Redis 6.2, each started by this suite on a free port of 127.0.0.1, with the
// conformance suite run against it. The binaries are named by RESHUFFLE_DATASTORE_VALKEY_SERVER
// and RESHUFFLE_DATASTORE_REDIS6_SERVER; `eval "$(scripts/redis-versions.sh)"` fetches both and
// sets them. Missing, these tests are skipped loudly, or fail under
// RESHUFFLE_DATASTORE_REQUIRE_REDIS_VERSIONS=1 (as in CI).
'use strict'
const fs = require('fs')
const { RedisStoreAdapter } = require('..')
const { runConformance, updateHeldOpen } = require('./conformance')
const { startServer } = require('./fixtures/redis-server')
const { requiredOrSkipped } = require('./lib/servers')
const { redisCaps } = require('./lib/redis-env')

let Redis = null
try {
  Redis = require('ioredis')
} catch {
  Redis = null
}

const servers = [
  { name: 'Valkey 8', variable: 'RESHUFFLE_DATASTORE_VALKEY_SERVER', info: /^valkey_version:8\./m },
  { name: 'Redis 6.2', variable: 'RESHUFFLE_DATASTORE_REDIS6_SERVER', info: /^redis_version:6\.2\./m },
]

function found(variable) {
  const bin = process.env[variable]
  if (!bin) return { ok: false, why: `${variable} is not set (eval "$(scripts/redis-versions.sh)" sets it)` }
  if (!fs.existsSync(bin)) return { ok: false, why: `${variable}=${bin} does not exist` }
  if (!Redis) return { ok: false, why: "the 'ioredis' package is not installed" }
  return { ok: true }
}

for (const { name, variable, info } of servers) {
  const status = found(variable)
  requiredOrSkipped(`Redis tests on ${name}`, status, 'RESHUFFLE_DATASTORE_REQUIRE_REDIS_VERSIONS')
  ;(status.ok ? describe : describe.skip)(name, () => {
    let server
    let count = 0
    const prefixOf = new WeakMap()
    const url = () => `redis://127.0.0.1:${server.port}`
    const open = (prefix = `p${count++}:`, options = {}) => {
      const store = new RedisStoreAdapter(url(), { prefix, ...options })
      prefixOf.set(store, prefix)
      return store
    }
    beforeAll(async () => {
      server = await startServer(process.env[variable])
    })
    afterAll(async () => {
      if (server) await server.stop()
    })

    test('the server is the one named', async () => {
      const admin = new Redis(url())
      try {
        expect(await admin.info('server')).toMatch(info)
      } finally {
        await admin.quit()
      }
    })

    runConformance(`RedisStoreAdapter on ${name}`, async () => open(), redisCaps({ url, open, prefixOf }))

    test('a lease is held across servers: another store waits for it, and gets the key after', async () => {
      const a = open()
      const b = open(prefixOf.get(a))
      await a.set('k', 1)
      const { interrupted, release } = await updateHeldOpen(a, 'k', 2)
      let waited = false
      const next = b.update('k', (n) => {
        waited = true
        return n + 1
      })
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(waited).toBe(false)
      release()
      expect(await interrupted).toEqual([1, 2])
      expect(await next).toEqual([2, 3])
      await a.close()
      await b.close()
    })
  })
}
