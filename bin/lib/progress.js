'use strict'
// Progress of a long copy or import on stderr: on a terminal, a bar redrawn in place; elsewhere
// (a pipe, a log file), a plain line now and then. Nothing is shown during the first `delay`
// ms, so a short run prints only its summary; nothing at all with --quiet (no Progress is made).

const BAR = 30

const number = (n) => n.toLocaleString('en-US')

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

class Progress {
  // `stream`: where to draw (stderr); `label`: what is done ('copy'); `total`: keys expected,
  // if known. `tty`, `now`, `delay` and `every` (ms between drawings) default from the stream
  // and the clock.
  constructor(stream, label, { total, tty = Boolean(stream.isTTY), now = Date.now, delay = 1000, every } = {}) {
    this.stream = stream
    this.label = label
    this.total = total
    this.tty = tty
    this.now = now
    this.delay = delay
    this.every = every === undefined ? (tty ? 100 : 5000) : every
    this.started = now()
    this.drawn = -Infinity
    this.shown = false
  }

  #text(done, bytes) {
    const counts = this.total === undefined ? `${number(done)} keys` : `${number(done)}/${number(this.total)} keys`
    if (!this.tty) return `${this.label}: ${counts}, ${size(bytes)}`
    if (this.total === undefined) return `${this.label} ${counts}  ${size(bytes)}`
    const share = this.total === 0 ? 1 : Math.min(1, done / this.total)
    const full = Math.round(share * BAR)
    const percent = String(Math.floor(share * 100)).padStart(3)
    return `${this.label} [${'#'.repeat(full)}${'-'.repeat(BAR - full)}] ${percent}%  ${counts}  ${size(bytes)}`
  }

  // `done` keys so far, `bytes` of their values.
  update(done, bytes) {
    const t = this.now()
    if (t - this.started < this.delay || t - this.drawn < this.every) return
    this.drawn = t
    this.shown = true
    if (this.tty) this.stream.write(`\r${this.#text(done, bytes)}\x1b[K`)
    else this.stream.write(`${this.#text(done, bytes)}\n`)
  }

  // Clears the bar, so that the summary line that follows starts at the left.
  end() {
    if (this.shown && this.tty) this.stream.write('\r\x1b[K')
  }
}

module.exports = { Progress, size, number }
