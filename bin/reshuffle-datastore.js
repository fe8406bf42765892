#!/usr/bin/env node
'use strict'
// The command line of reshuffle-datastore (README, Command line): compact, export, import, copy
// and stats over any store, through the package's public API only.
const fs = require('fs')
const { resolveTarget, openTarget, sameStore, UsageError, CommandError } = require('./lib/targets')
const { ObjectReader, InputError } = require('./lib/object-reader')
const { Progress, size, number } = require('./lib/progress')
const { access, BATCH } = require('./lib/access')

const NAME = 'reshuffle-datastore'

const COMMANDS_TEXT = `Commands:
  compact <file>       rewrite a file store as one JSON object (what reshuffle 1.0.9 reads)
  export <target>      write every key as one JSON object { key: value, ... } to stdout
  import <target>      read one JSON object from stdin and set every key of it
  copy <from> <to>     copy every key from one store to another (any two backends)
  stats <target>       keys and bytes; for a file store also its size and appended records
`

const USAGE = `Usage: ${NAME} <command> [options]

${COMMANDS_TEXT}
Targets, as in the constructors:
  x.json, file:<path>                     a file store (FileStoreAdapter)
  x.db, x.sqlite, x.sqlite3, sqlite:<path> a SQLite database (SQLStoreAdapter)
  postgres://..., postgresql://...        PostgreSQL (SQLStoreAdapter; PG* variables fill in the rest)
  mysql://...                             MySQL or MariaDB (MySQLStoreAdapter)
  redis://..., rediss://...               Redis (RedisStoreAdapter)
  any other path that exists              SQLite if it has SQLite's header, else a file store

Options:
  --table <T>          the table of SQL targets (default reshuffledb); for copy, of both
  --from-table <T>     (copy) the table of <from>
  --to-table <T>       (copy) the table of <to>
  --merge              (import, copy) write into a store that already holds keys
  --quiet, -q          (compact, export, import, copy) nothing on stderr but errors
  --json               (stats) print the figures as JSON
  --help, -h           print this text
  --version            print the version

Exit status: 0 done; 1 failed (a store's error is printed with its code); 2 wrong usage.
`

// What a usage error prints after its message.
const SHORT_USAGE = `Usage: ${NAME} <command> [options]

${COMMANDS_TEXT}
${NAME} --help describes targets and options.
`

const COMMANDS = {
  compact: { args: ['file'], options: ['quiet'] },
  export: { args: ['target'], options: ['table', 'quiet'] },
  import: { args: ['target'], options: ['table', 'merge', 'quiet'] },
  copy: { args: ['from', 'to'], options: ['table', 'from-table', 'to-table', 'merge', 'quiet'] },
  stats: { args: ['target'], options: ['table', 'json'] },
}

const VALUE_OPTIONS = new Set(['table', 'from-table', 'to-table'])
const FLAG_OPTIONS = new Set(['merge', 'quiet', 'json', 'help', 'version'])
const SHORT = new Map([
  ['-h', 'help'],
  ['-q', 'quiet'],
])

// Up to this many bytes of values are written in one batch (and at most BATCH keys).
const BATCH_BYTES = 8 * 1024 * 1024

function parseArgs(argv) {
  const positionals = []
  const options = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (SHORT.has(arg)) {
      options[SHORT.get(arg)] = true
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      if (VALUE_OPTIONS.has(name)) {
        let value
        if (eq >= 0) value = arg.slice(eq + 1)
        else if (i + 1 < argv.length) value = argv[++i]
        if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`)
        options[name] = value
      } else if (FLAG_OPTIONS.has(name) && eq < 0) {
        options[name] = true
      } else {
        throw new UsageError(`unknown option ${eq < 0 ? arg : arg.slice(0, eq)}`)
      }
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option ${arg}`)
    } else {
      positionals.push(arg)
    }
  }
  return { command: positionals[0], args: positionals.slice(1), options }
}

// Writes to stdout, one piece at a time, each after the previous one was handed over (so a slow
// reader slows the export down instead of filling memory); a closed stdout rejects.
class Output {
  constructor(stream) {
    this.stream = stream
    stream.on('error', () => {}) // reported through write()'s callback
  }

  write(text) {
    return new Promise((resolve, reject) => this.stream.write(text, (e) => (e ? reject(e) : resolve())))
  }
}

// Collects [key, value]s and writes them in batches; `written` counts what was written.
class BatchWriter {
  constructor(store, progress) {
    this.store = store
    this.progress = progress
    this.pending = new Map() // a key given twice keeps its last value, as JSON.parse does
    this.pendingBytes = 0
    this.written = 0
    this.bytes = 0
  }

  async add(key, value) {
    const bytes = Buffer.byteLength(JSON.stringify(value))
    this.pending.set(key, value)
    this.pendingBytes += bytes
    if (this.pending.size >= BATCH || this.pendingBytes >= BATCH_BYTES) await this.flush()
  }

  async flush() {
    if (this.pending.size === 0) return
    const entries = [...this.pending]
    const bytes = this.pendingBytes
    this.pending = new Map()
    this.pendingBytes = 0
    try {
      this.written += await this.store.write(entries)
    } catch (e) {
      this.written += typeof e?.written === 'number' ? e.written : 0
      throw e
    }
    this.bytes += bytes
    if (this.progress) this.progress.update(this.written, this.bytes)
  }
}

// Where a file store's data ends and its appended records begin (docs/file-format.md): the
// base is one JSON object, then one record per line, `<8 hex digits> [...]`. No line of a JSON
// object can start that way, so the first such line ends the base.
function fileLayout(file) {
  const data = fs.readFileSync(file)
  let base = data.length
  let records = 0
  let tornBytes = 0
  for (let start = 0; start < data.length;) {
    const nl = data.indexOf(0x0a, start)
    const end = nl < 0 ? data.length : nl + 1
    if (base === data.length && isRecordStart(data, start)) base = start
    if (base < data.length) {
      if (nl < 0) tornBytes = end - start
      else records++
    }
    start = end
  }
  return { fileBytes: data.length, baseBytes: base, records, tornBytes }
}

function isRecordStart(data, at) {
  if (at + 10 > data.length || data[at + 8] !== 0x20 || data[at + 9] !== 0x5b) return false
  for (let i = at; i < at + 8; i++) {
    const c = data[i]
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false
  }
  return true
}

function fileSize(file) {
  try {
    return fs.statSync(file).size
  } catch (e) {
    if (e.code === 'ENOENT') return 0
    throw e
  }
}

const keysText = (n) => `${number(n)} key${n === 1 ? '' : 's'}`

// The stores a command opens, closed when it ends. A file store that the command only read is
// left as it is: its close() would compact a file that holds records, and a command that reads
// should leave the file as it found it (nothing of it needs flushing, and an idle store keeps
// nothing alive).
class Stores {
  constructor(api) {
    this.api = api
    this.opened = []
  }

  open(target, { readOnly = false } = {}) {
    const store = openTarget(this.api, target)
    this.opened.push({ store, close: !(readOnly && target.kind === 'file') })
    return store
  }

  // Closes every store; rejects with the first failure unless the command already failed.
  async closeAll(failed) {
    let error
    for (const { store, close } of this.opened.reverse()) {
      if (!close) continue
      try {
        await store.close()
      } catch (e) {
        if (error === undefined) error = e
      }
    }
    this.opened = []
    if (error !== undefined && !failed) throw error
  }
}

const commands = {
  async compact(ctx, [file]) {
    const target = resolveTarget(file, { role: 'source' })
    if (target.kind !== 'file') throw new UsageError(`compact works on a file store; ${file} is a ${target.label}`)
    const before = fileLayout(target.path)
    const store = ctx.stores.open(target)
    await store.compact()
    await store.close()
    const after = fileSize(target.path)
    ctx.info(
      `compacted ${target.label}: ${number(before.records)} record${before.records === 1 ? '' : 's'} ` +
        `folded in, ${size(before.fileBytes)} -> ${size(after)}`,
    )
  },

  async export(ctx, [text]) {
    const target = resolveTarget(text, { role: 'source', table: ctx.options.table })
    const store = ctx.stores.open(target, { readOnly: true })
    const out = new Output(process.stdout)
    let n = 0
    let chunk = '{'
    for await (const [key, value] of access(store).entries()) {
      chunk += `${n === 0 ? '' : ','}${JSON.stringify(key)}:${JSON.stringify(value)}`
      n++
      if (chunk.length >= 65536) {
        await out.write(chunk)
        chunk = ''
      }
    }
    await out.write(`${chunk}}\n`)
    ctx.info(`exported ${keysText(n)} from ${target.label}${emptyTableNote(target, n)}`)
  },

  async import(ctx, [text]) {
    if (process.stdin.isTTY) {
      throw new UsageError(`import reads one JSON object from stdin: ${NAME} import <target> < data.json`)
    }
    const target = resolveTarget(text, { role: 'destination', table: ctx.options.table })
    const store = access(ctx.stores.open(target))
    await refuseUnlessEmpty(ctx, store, target)
    const writer = new BatchWriter(store, await ctx.progress('import'))
    ctx.written = { writer, target }
    const reader = new ObjectReader('stdin')
    process.stdin.setEncoding('utf8')
    for await (const piece of process.stdin) {
      for (const [key, value] of reader.push(piece)) await writer.add(key, value)
    }
    reader.end()
    await writer.flush()
    ctx.endProgress()
    ctx.info(`imported ${keysText(writer.written)} into ${target.label}`)
  },

  async copy(ctx, [fromText, toText]) {
    const { options } = ctx
    const from = resolveTarget(fromText, {
      role: 'source',
      table: options['from-table'] ?? options.table,
      strict: false,
    })
    const to = resolveTarget(toText, {
      role: 'destination',
      table: options['to-table'] ?? options.table,
      strict: false,
    })
    if (options['from-table'] !== undefined && from.table === undefined) {
      throw new UsageError(`${from.label} has no table: --from-table is for SQL targets`)
    }
    if (options['to-table'] !== undefined && to.table === undefined) {
      throw new UsageError(`${to.label} has no table: --to-table is for SQL targets`)
    }
    if (options.table !== undefined && from.table === undefined && to.table === undefined) {
      throw new UsageError('neither target has a table: --table is for SQL targets')
    }
    if (sameStore(from, to)) throw new UsageError(`copy from ${from.label} to itself`)
    const source = access(ctx.stores.open(from, { readOnly: true }))
    const destination = access(ctx.stores.open(to))
    await refuseUnlessEmpty(ctx, destination, to)
    const writer = new BatchWriter(destination, await ctx.progress('copy', () => source.count()))
    ctx.written = { writer, target: to }
    for await (const [key, value] of source.entries()) await writer.add(key, value)
    await writer.flush()
    ctx.endProgress()
    ctx.info(
      `copied ${keysText(writer.written)} (${size(writer.bytes)}) from ${from.label} to ${to.label}` +
        emptyTableNote(from, writer.written),
    )
  },

  async stats(ctx, [text]) {
    const target = resolveTarget(text, { role: 'source', table: ctx.options.table })
    const figures = { target: target.label, kind: target.kind }
    // The file first, then the store, so records counted are ones the store has read.
    const layout = target.kind === 'file' ? fileLayout(target.path) : undefined
    const store = ctx.stores.open(target, { readOnly: true })
    let keys = 0
    let keyBytes = 0
    let valueBytes = 0
    for await (const [key, value] of access(store).entries()) {
      keys++
      keyBytes += Buffer.byteLength(key)
      valueBytes += Buffer.byteLength(JSON.stringify(value))
    }
    Object.assign(figures, { keys, keyBytes, valueBytes })
    if (layout) Object.assign(figures, layout)
    if (target.kind === 'sqlite') {
      Object.assign(figures, { fileBytes: fileSize(target.path), walBytes: fileSize(`${target.path}-wal`) })
    }
    if (ctx.options.json) {
      process.stdout.write(`${JSON.stringify(figures)}\n`)
      return
    }
    const rows = [
      ['keys', number(keys)],
      ['key bytes', number(keyBytes)],
      ['value bytes', number(valueBytes)],
    ]
    if (layout) {
      rows.push(['file bytes', number(layout.fileBytes)])
      rows.push(['base bytes', number(layout.baseBytes)])
      rows.push(['records', number(layout.records)])
      if (layout.tornBytes > 0) rows.push(['torn record', `${number(layout.tornBytes)} bytes (dropped)`])
    }
    if (target.kind === 'sqlite') {
      rows.push(['file bytes', number(figures.fileBytes)])
      rows.push(['WAL bytes', number(figures.walBytes)])
    }
    const lines = rows.map(([name, value]) => `  ${name.padEnd(12)} ${value}`)
    process.stdout.write(`${target.label}\n${lines.join('\n')}\n`)
  },
}

// Opening a SQL store creates its table: a mistyped --table reads as an empty store.
const emptyTableNote = (target, n) =>
  n === 0 && target.table !== undefined ? `: the table was empty or did not exist` : ''

async function refuseUnlessEmpty(ctx, store, target) {
  if (ctx.options.merge || (await store.isEmpty())) return
  throw new CommandError(
    `${target.label} already holds keys: pass --merge to write into it anyway ` +
      '(keys in both are overwritten, the others are kept)',
  )
}

function describe(error) {
  if (error !== null && typeof error === 'object') {
    const message = typeof error.message === 'string' ? error.message : String(error)
    if (typeof error.code === 'string' && error.code.startsWith('ERR_DATASTORE_')) return `${error.code}: ${message}`
    if (error.code === 'EPIPE') return 'stdout was closed before the end (EPIPE)'
    return message
  }
  return String(error)
}

async function main(argv) {
  const err = process.stderr
  let parsed
  try {
    parsed = parseArgs(argv)
  } catch (e) {
    err.write(`${NAME}: ${e.message}\n\n${SHORT_USAGE}`)
    return 2
  }
  const { command, args, options } = parsed
  if (options.help || command === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (options.version) {
    process.stdout.write(`${require('../package.json').version}\n`)
    return 0
  }
  const spec =
    command === undefined ? undefined : Object.prototype.hasOwnProperty.call(COMMANDS, command) && COMMANDS[command]
  const fail = (message) => {
    err.write(`${NAME}: ${message}\n\n${SHORT_USAGE}`)
    return 2
  }
  if (command === undefined) return fail('no command given')
  if (!spec) return fail(`unknown command ${JSON.stringify(command)}`)
  const extra = Object.keys(options).find((o) => !spec.options.includes(o))
  if (extra) return fail(`${command} has no option --${extra}`)
  if (args.length !== spec.args.length) {
    return fail(`${command} takes ${spec.args.map((a) => `<${a}>`).join(' ')}`)
  }

  let api
  try {
    api = require('..')
  } catch (e) {
    err.write(`${NAME}: ${describe(e)}\n`)
    return 1
  }

  let bar = null
  const ctx = {
    options,
    stores: new Stores(api),
    written: undefined,
    info: (line) => {
      if (!options.quiet) err.write(`${line}\n`)
    },
    // A Progress for `label` unless --quiet; `total` (a function) counts the keys to expect.
    progress: async (label, total) => {
      if (options.quiet) return null
      bar = new Progress(err, label, { total: total ? await total() : undefined })
      return bar
    },
    endProgress: () => bar && bar.end(),
  }
  let failed = false
  try {
    await commands[command](ctx, args)
  } catch (e) {
    failed = true
    ctx.endProgress()
    if (e instanceof UsageError) return fail(e.message)
    err.write(`${NAME} ${command}: ${describe(e)}\n`)
    if (ctx.written) {
      const { writer, target } = ctx.written
      const n = writer.written
      const what = n === 0 ? 'nothing was' : `${keysText(n)} ${n === 1 ? 'was' : 'were'}`
      err.write(`${NAME} ${command}: ${what} written to ${target.label} before the error\n`)
    }
    return 1
  } finally {
    try {
      await ctx.stores.closeAll(failed)
    } catch (e) {
      err.write(`${NAME} ${command}: ${describe(e)}\n`)
      failed = true
    }
    if (command === 'import') process.stdin.destroy()
  }
  return failed ? 1 : 0
}

module.exports = { main, parseArgs, fileLayout }

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (e) => {
      process.stderr.write(`${NAME}: ${e && e.stack ? e.stack : String(e)}\n`)
      process.exitCode = 1
    },
  )
}
