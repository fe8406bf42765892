// The Redis server the tests use: REDIS_URL, or this machine's 127.0.0.1:6379.
'use strict'
const { spawnSync } = require('child_process')

const redisUrl = () => process.env.REDIS_URL || 'redis://127.0.0.1:6379'

// Whether the server answers PING (asked from a child process, so that this stays synchronous).
function redisReachable(url = redisUrl()) {
  const probe = `
    const net = require('net')
    const u = new URL(process.argv[1])
    const s = net.connect(Number(u.port || 6379), u.hostname || '127.0.0.1')
    const fail = (why) => { console.log(why); process.exit(1) }
    s.setTimeout(3000, () => fail('no answer within 3 s'))
    s.on('error', (e) => fail(e.message))
    s.on('connect', () => s.write('PING\\r\\n'))
    s.on('data', (d) => (String(d).startsWith('+PONG') || String(d).startsWith('-NOAUTH') ? process.exit(0) : fail(String(d))))
  `
  const r = spawnSync(process.execPath, ['-e', probe, url], { encoding: 'utf8', timeout: 10000 })
  return r.status === 0
    ? { ok: true }
    : { ok: false, why: `no Redis server at ${url}: ${(r.stdout || r.error || '').toString().trim()}` }
}

// The conformance suite's capabilities (conformance.js) for Redis stores that `open(prefix?)`
// makes on the server at `url()`, whose prefixes `prefixOf` remembers: reopened on the same
// prefix, and shared with other processes, which open theirs with `options` too.
function redisCaps({ url, open, prefixOf, options }) {
  return {
    persistent: true,
    multiProcess: {
      spec: (store) => ({ kind: 'redis', url: url(), prefix: prefixOf.get(store), ...(options ? { options } : {}) }),
    },
    reopen: async (store) => {
      const prefix = prefixOf.get(store)
      await store.close()
      return open(prefix)
    },
  }
}

module.exports = { redisUrl, redisReachable, redisCaps }
