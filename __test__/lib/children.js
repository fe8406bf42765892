// Child processes that talk in JSON lines: each line a child prints is one message.
'use strict'
const { spawn } = require('child_process')
const fs = require('fs')
const path = require('path')

const fixture = (name) => path.join(__dirname, '..', 'fixtures', name)

// Spawns `node fixtures/<name> ...args`; `onMessage(msg)` gets every whole line, parsed.
// Returns { child, send(obj), exited: Promise<{ code, signal }> }.
function startChild(name, args, onMessage, { stdin = false } = {}) {
  const child = spawn(process.execPath, [fixture(name), ...args], {
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'],
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

module.exports = { startChild, serveStdin, say, sayNow, fixture }
