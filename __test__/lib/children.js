// Child processes for tests, in one place. Children talk in JSON lines: each line a child
// prints is one message. A child's output is read to its end at 'close', never at 'exit'
// (which can come before the last lines are read).
'use strict'
const { spawn } = require('child_process')
const fs = require('fs')
const path = require('path')

// The fixture scripts of the main suite.
const fixture = (name) => path.join(__dirname, '..', 'fixtures', name)

// Spawns `node <script> ...args`; `onMessage(msg)` gets every whole line, parsed.
// Returns { child, send(obj), exited: Promise<{ code, signal }> }.
function startChild(script, args, onMessage, { stdin = false, env } = {}) {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    env: env || { ...process.env },
  })
  let buffer = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => {
    buffer += d
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      if (line.trim()) onMessage(JSON.parse(line))
    }
  })
  // 'close', not 'exit': every line the child wrote before it died has been read by then.
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const send = (obj) => child.stdin.write(JSON.stringify(obj) + '\n')
  return { child, send, exited }
}

// Runs `node ...argv` to its end and resolves once its output is read whole ('close'):
// { code, signal, messages (its JSON lines, parsed), stdout, stderr }. A child still running
// after `timeout` ms is killed (SIGKILL; `signal` says so), so a process that does not exit by
// itself fails the test that waits for it rather than hanging it. `input` (a string or Buffer),
// if given, is the child's stdin; otherwise it has none.
function runNode(argv, { timeout = 60000, env, input } = {}) {
  return new Promise((resolve, reject) => {
    const stdin = input === undefined ? 'ignore' : 'pipe'
    const child = spawn(process.execPath, argv, { stdio: [stdin, 'pipe', 'pipe'], env: env || { ...process.env } })
    if (input !== undefined) {
      child.stdin.on('error', () => {}) // a child that exits without reading it all
      child.stdin.end(input)
    }
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const messages = []
      for (const line of stdout.split('\n')) {
        if (!line.trim()) continue
        try {
          messages.push(JSON.parse(line))
        } catch {
          // not a message: left in stdout
        }
      }
      resolve({ code, signal, messages, stdout, stderr })
    })
  })
}

// Runs `node <script> ...args` to its end (see runNode).
function runChild(script, args = [], options = {}) {
  return runNode([script, ...args], options)
}

// Reads JSON-line requests from stdin (for fixtures): `handle(msg)` is awaited per line, in order.
function serveStdin(handle) {
  let buffer = ''
  let chain = Promise.resolve()
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (d) => {
    buffer += d
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffer.slice(0, nl))
      buffer = buffer.slice(nl + 1)
      chain = chain.then(() => handle(msg))
    }
  })
}

const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// `say`, written before it returns. process.stdout.write to a pipe queues in the process when
// the pipe is full, and a SIGKILL drops the queue: a child that announces an operation before
// starting it (and is killed) must use this.
const sayNow = (obj) => fs.writeSync(1, JSON.stringify(obj) + '\n')

// A worker thread (fixtures/lifecycle-worker.js) whose update of `key` in the store `spec`
// describes holds the key until the thread ends, by `mode`: 'hold' or 'spin' (until
// terminated), 'throw' or 'exit'. `held` resolves once its updater runs; `exited` when the
// thread ends.
function startWorker(spec, key, mode) {
  const { Worker } = require('worker_threads')
  const worker = new Worker(fixture('lifecycle-worker.js'), { workerData: { spec, key, mode } })
  const held = new Promise((resolve, reject) => {
    worker.on('message', (m) => m.held && resolve())
    worker.on('error', () => {})
    worker.on('exit', (code) => reject(new Error(`the worker ended (${code}) before holding the key`)))
  })
  const exited = new Promise((resolve) => worker.on('exit', resolve))
  return { worker, held, exited }
}

module.exports = { startChild, runChild, runNode, serveStdin, say, sayNow, fixture, startWorker }
