// Shared by the MySQL/MariaDB tests and their child processes: connection settings for the
// local test server (MYSQL_URL, or MYSQL_HOST/PORT/USER/PASSWORD/DATABASE with defaults for
// this machine: 127.0.0.1:3306, root, no password, database test), whether it is reachable,
// and the lock name a key gets on the server (to find the connection that holds it).
'use strict'
const { spawnSync } = require('child_process')
const { requiredOrSkipped } = require('./servers')

// A mysql2-style config object for the test server; for MYSQL_URL, `{ uri }`, which mysql2 and
// the store both read (so tests may spread it and add settings of their own).
function mysqlConfig(env = process.env) {
  if (env.MYSQL_URL) return { uri: env.MYSQL_URL }
  const config = {
    host: env.MYSQL_HOST || '127.0.0.1',
    port: Number(env.MYSQL_PORT || 3306),
    user: env.MYSQL_USER || 'root',
    database: env.MYSQL_DATABASE || 'test',
  }
  if (env.MYSQL_PASSWORD) config.password = env.MYSQL_PASSWORD
  return config
}

// Whether a store can reach the server; decided in a child process so that it can be called
// while jest collects tests.
function serverReachable() {
  const probe = `
    const { MySQLStoreAdapter } = require(${JSON.stringify(require.resolve('../..'))})
    const s = new MySQLStoreAdapter(${JSON.stringify(mysqlConfig())}, 'reshuffle_datastore_probe')
    s.list().then(() => { console.log('ok'); return s.close() }, (e) => { console.log(e.message); return s.close() })
  `
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', timeout: 15000 })
  return { ok: r.stdout.trim() === 'ok', why: (r.stdout + r.stderr).trim() || `exit ${r.status}` }
}

// FNV-1a (64 bits) of `parts`, each followed by 0xff (crates/core/src/backends/lock_hash.rs).
function fnv1a64(parts) {
  const prime = 0x100000001b3n
  const mask = (1n << 64n) - 1n
  let h = 0xcbf29ce484222325n
  for (const part of parts) {
    for (const b of Buffer.from(part, 'utf8')) h = ((h ^ BigInt(b)) * prime) & mask
    h = ((h ^ 0xffn) * prime) & mask
  }
  return h.toString(16).padStart(16, '0')
}

// The server-wide lock name of `key` in `database`.`table` (crates/core/src/backends/mysql/locked.rs).
function lockName(database, table, key) {
  const tag = 'reshuffle-datastore'
  return `rds:${fnv1a64([tag, database, table, key])}${fnv1a64([key, table, database, tag])}`
}

// Drops `tables` with a connection of its own.
async function dropTables(tables) {
  if (tables.length === 0) return
  const mysql = require('mysql2/promise')
  const c = await mysql.createConnection(mysqlConfig())
  try {
    for (let i = 0; i < tables.length; i += 100) {
      await c.query(`DROP TABLE IF EXISTS ${tables.slice(i, i + 100).join(', ')}`)
    }
  } finally {
    await c.end()
  }
}

// Whether the MySQL tests named `what` can run here: they need the server and the mysql2
// package (for checks made from the outside). Skipped loudly otherwise, or a failing test
// under RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1 (lib/servers.js). Returns { ok, mysql2 }, mysql2
// being its promise API (null when not installed).
function mysqlTests(what) {
  let mysql2 = null
  try {
    mysql2 = require('mysql2/promise')
  } catch {
    mysql2 = null
  }
  const status = mysql2 ? serverReachable() : { ok: false, why: "the 'mysql2' package is not installed" }
  const where = process.env.MYSQL_URL || `${mysqlConfig().host}:${mysqlConfig().port}`
  const ok = requiredOrSkipped(`${what} at ${where}`, status, 'RESHUFFLE_DATASTORE_REQUIRE_MYSQL')
  return { ok, mysql2 }
}

module.exports = { mysqlConfig, serverReachable, lockName, dropTables, mysqlTests }
