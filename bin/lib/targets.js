'use strict'
// Targets of the command line, written as in the constructors: a path or a URL. Which store a
// target names is decided here, by one rule (README, Command line):
//
//   file:<path>, file:///<path>          FileStoreAdapter
//   sqlite:<path>                        SQLStoreAdapter on SQLite
//   postgres://…, postgresql://…         SQLStoreAdapter on PostgreSQL
//   mysql://…                            MySQLStoreAdapter
//   redis://…, rediss://…                RedisStoreAdapter
//   a path ending in .json               FileStoreAdapter
//   a path ending in .db .sqlite .sqlite3  SQLite
//   any other path that exists           SQLite if it starts with SQLite's header, else a file store
//
// Anything else is a usage error that says how to name the target.
const fs = require('fs')
const path = require('path')
const { fileURLToPath } = require('url')

const DEFAULT_TABLE = 'reshuffledb'
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

// A mistake in how the command was written: printed with the usage, exit status 2.
class UsageError extends Error {}

// A failure that is not the store's (a missing file, bad input): printed as is, exit status 1.
class CommandError extends Error {}

const KINDS = {
  file: { name: 'file store', sql: false },
  sqlite: { name: 'SQLite database', sql: true },
  postgres: { name: 'PostgreSQL', sql: true },
  mysql: { name: 'MySQL', sql: true },
  redis: { name: 'Redis database', sql: false },
}

const SCHEMES = [
  ['postgres://', 'postgres'],
  ['postgresql://', 'postgres'],
  ['mysql://', 'mysql'],
  ['redis://', 'redis'],
  ['rediss://', 'redis'],
]

// The URL as it may be shown: without its password.
function redact(url) {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@')
  }
}

function sniff(file) {
  let fd
  try {
    fd = fs.openSync(file, 'r')
  } catch (e) {
    if (e.code === 'ENOENT') return 'missing'
    throw new CommandError(`cannot read ${file}: ${e.message}`)
  }
  try {
    if (fs.fstatSync(fd).isDirectory()) throw new CommandError(`${file} is a folder, not a store`)
    const head = Buffer.alloc(SQLITE_HEADER.length)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    if (n === 0) return 'empty'
    return n === head.length && head.equals(SQLITE_HEADER) ? 'sqlite' : 'file'
  } finally {
    fs.closeSync(fd)
  }
}

const AMBIGUOUS =
  'name a file store *.json or write file:<path>; name a SQLite database *.db, *.sqlite or *.sqlite3 ' +
  'or write sqlite:<path>'

// What `text` names: { kind, path | url }. `role` is 'source' (must exist) or 'destination'.
function parseTarget(text, role) {
  if (typeof text !== 'string' || text === '') throw new UsageError('a target is empty')
  for (const [prefix, kind] of SCHEMES) {
    if (text.toLowerCase().startsWith(prefix)) return { kind, url: text }
  }
  if (/^file:/i.test(text)) {
    const file = /^file:\/\//i.test(text) ? fileURLToPath(text) : text.slice('file:'.length)
    if (file === '') throw new UsageError(`${text}: no path after file:`)
    return { kind: 'file', path: path.resolve(file) }
  }
  if (/^sqlite:/i.test(text)) {
    const file = text.slice('sqlite:'.length)
    if (file === '') throw new UsageError(`${text}: no path after sqlite:`)
    return { kind: 'sqlite', path: path.resolve(file) }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)
  if (scheme) {
    throw new UsageError(
      `${redact(text)}: unknown kind of target ${scheme[1]}://; a target is a path, file:<path>, ` +
        'sqlite:<path>, or a postgres://, postgresql://, mysql://, redis:// or rediss:// URL',
    )
  }
  const file = path.resolve(text)
  const ext = path.extname(text).toLowerCase()
  if (ext === '.json') return { kind: 'file', path: file }
  if (ext === '.db' || ext === '.sqlite' || ext === '.sqlite3') return { kind: 'sqlite', path: file }
  const found = sniff(file)
  if (found === 'file' || found === 'sqlite') return { kind: found, path: file }
  if (found === 'missing' && role === 'source') throw new CommandError(`no such file: ${file}`)
  const why = found === 'empty' ? 'is empty' : 'does not exist yet'
  throw new UsageError(`${text} ${why}, so its name must say what it is: ${AMBIGUOUS}`)
}

// A target and its table: { kind, path | url, table, label }. `table` is the --table given for
// this target (undefined: the default for SQL targets); for a target that has no table it is a
// usage error, or with `strict: false` ignored.
function resolveTarget(text, { role, table, strict = true }) {
  const target = parseTarget(text, role)
  const kind = KINDS[target.kind]
  if (table !== undefined && !kind.sql && strict) {
    throw new UsageError(`${redact(text)} is a ${kind.name}, which has no tables: --table is for SQL targets`)
  }
  if (kind.sql) target.table = table === undefined ? DEFAULT_TABLE : table
  if (target.path !== undefined && role === 'source' && sniff(target.path) === 'missing') {
    throw new CommandError(`no such file: ${target.path}`)
  }
  const where = target.path !== undefined ? target.path : redact(target.url)
  target.label = `${kind.name} ${where}${kind.sql ? ` (table ${target.table})` : ''}`
  return target
}

// Whether two resolved targets are the same store.
function sameStore(a, b) {
  if (a.kind !== b.kind || a.table !== b.table) return false
  if (a.path !== undefined) return a.path === b.path
  return a.url === b.url
}

// Opens the store a resolved target names, through the package's public API.
function openTarget(api, target) {
  switch (target.kind) {
    case 'file':
      return new api.FileStoreAdapter(target.path)
    case 'sqlite':
      return new api.SQLStoreAdapter(target.path, target.table)
    case 'postgres':
      return new api.SQLStoreAdapter(target.url, target.table)
    case 'mysql':
      return new api.MySQLStoreAdapter(target.url, target.table)
    case 'redis':
      return new api.RedisStoreAdapter(target.url)
    default:
      throw new Error(`unknown kind of target ${target.kind}`)
  }
}

module.exports = { resolveTarget, openTarget, sameStore, UsageError, CommandError, DEFAULT_TABLE }
