// Child processes that talk in JSON lines: each line a child prints is one message.
'use strict'
const { spawn } = require('child_process')
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
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
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

module.exports = { startChild, serveStdin, say, fixture }
