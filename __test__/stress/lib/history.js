// Histories and their linearizability check.
//
// Callers (async loops, in one or several processes) run random get / set / update / remove
// calls on a few keys. Each call is recorded with its invocation and response times on the
// machine's monotonic clock (process.hrtime: CLOCK_MONOTONIC on Linux, shared by all
// processes) and with what it wrote and read. Every written value is unique, so each read names
// the one write it saw. Each round uses fresh keys (initial state: missing) and ends with a
// quiescent read by the checker, so a round is a closed history per key.
//
// The check, per key: a search (Wing & Gong, memoised on [linearized set, current value]) for an
// order of the calls that respects real time (a call that responded before another was invoked
// comes first) and that a sequential register explains: get returns the current value, set and
// update's new value replace it, remove makes it missing, update's old value is the current one
// (an update whose updater returned undefined only reads).
'use strict'
const { random, sleep } = require('../../lib/stores')

const now = () => Number(process.hrtime.bigint())
const MISSING = '\u0000missing'

// One caller's run: `ops` random calls on `keys`, values tagged with `tag`. Resolves to the
// records of its calls.
async function runCaller(store, { keys, ops, tag, seed }) {
  const rnd = random(seed)
  const out = []
  for (let i = 0; i < ops; i++) {
    const key = keys[Math.floor(rnd() * keys.length)]
    const value = `${tag}-${i}`
    const r = rnd()
    const rec = { key, inv: 0, res: 0 }
    if (rnd() < 0.3) await sleep(rnd() * 2)
    if (r < 0.3) {
      rec.kind = 'get'
      rec.inv = now()
      const v = await store.get(key)
      rec.res = now()
      rec.read = v === undefined ? MISSING : v
    } else if (r < 0.55) {
      rec.kind = 'set'
      rec.write = value
      rec.inv = now()
      await store.set(key, value)
      rec.res = now()
    } else if (r < 0.85) {
      rec.kind = 'update'
      const keep = rnd() < 0.15
      const slow = rnd() < 0.5 ? rnd() * 3 : -1
      rec.inv = now()
      const [old, neu] = await store.update(key, async (v) => {
        if (slow >= 0) await sleep(slow)
        return keep ? undefined : value
      })
      rec.res = now()
      rec.read = old === undefined ? MISSING : old
      rec.write = neu === undefined ? null : neu
      if (!keep && neu !== value) throw new Error(`update of ${key} returned ${neu}, wrote ${value}`)
    } else {
      rec.kind = 'remove'
      rec.write = MISSING
      rec.inv = now()
      await store.remove(key)
      rec.res = now()
    }
    out.push(rec)
  }
  return out
}

// The state after `op` on `state`, or undefined when `op` cannot happen in `state`.
function step(op, state) {
  switch (op.kind) {
    case 'get':
      return op.read === state ? state : undefined
    case 'set':
    case 'remove':
      return op.write
    case 'update':
      if (op.read !== state) return undefined
      return op.write === null ? state : op.write
    default:
      throw new Error(`unknown op ${op.kind}`)
  }
}

// Whether the calls of one key (at most 30) are linearizable from `initial`.
function linearizable(ops, initial = MISSING) {
  const n = ops.length
  if (n > 30) throw new Error(`history too long to check: ${n} calls`)
  const full = n === 30 ? 0x3fffffff : (1 << n) - 1
  const seen = new Set()
  const dfs = (mask, state) => {
    if (mask === full) return true
    const memo = `${mask}|${state}`
    if (seen.has(memo)) return false
    seen.add(memo)
    let minRes = Infinity
    for (let i = 0; i < n; i++) if (!(mask & (1 << i)) && ops[i].res < minRes) minRes = ops[i].res
    for (let i = 0; i < n; i++) {
      if (mask & (1 << i) || ops[i].inv > minRes) continue
      const next = step(ops[i], state)
      if (next !== undefined && dfs(mask | (1 << i), next)) return true
    }
    return false
  }
  return dfs(0, initial)
}

// Groups records by key and checks each group. Returns { keys, calls, violations: [key...] }.
function checkRound(records) {
  const byKey = new Map()
  for (const r of records) {
    if (!byKey.has(r.key)) byKey.set(r.key, [])
    byKey.get(r.key).push(r)
  }
  const violations = []
  for (const [key, ops] of byKey) {
    ops.sort((a, b) => a.inv - b.inv)
    if (!linearizable(ops)) violations.push({ key, ops })
  }
  return { keys: byKey.size, calls: records.length, violations }
}

// The closing quiescent read of each key, as a record.
async function finalReads(store, keys) {
  const out = []
  for (const key of keys) {
    const inv = now()
    const v = await store.get(key)
    out.push({ key, kind: 'get', inv, res: now(), read: v === undefined ? MISSING : v })
  }
  return out
}

module.exports = { runCaller, linearizable, checkRound, finalReads, MISSING, now }
