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

// Runs `node <script> ...args` to its end: { code, signal, messages } (every JSON line).
async function runChild(script, args = [], options = {}) {
  const messages = []
  const { exited } = startChild(script, args, (m) => messages.push(m), options)
  const { code, signal } = await exited
  return { code, signal, messages }
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

module.exports = { startChild, runChild, serveStdin, say, sayNow, fixture }
