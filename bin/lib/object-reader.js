'use strict'
// Reads one JSON object, { "key": value, … } — reshuffle's file format, and what `export` writes —
// from text that arrives in pieces, and hands out its members as they complete, so that `import`
// never holds more than one member's text. The structure is scanned here; each key and value is
// then parsed by JSON.parse, so what is accepted is exactly JSON.

const BEFORE = 0 // before the opening brace
const FIRST = 1 // after the opening brace: a key or the closing brace
const KEY = 2 // inside a key's string
const COLON = 3 // after a key
const VALUE_START = 4 // after the colon
const VALUE = 5 // inside a value
const NEXT = 6 // after a comma: a key
const AFTER = 7 // after the closing brace: only whitespace

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON_CHAR = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const BOM = 0xfeff

const isSpace = (c) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

class InputError extends Error {}

class ObjectReader {
  constructor(name = 'the input') {
    this.name = name
    this.state = BEFORE
    this.offset = 0 // characters before the current piece
    this.pieces = [] // the current key's or value's text from earlier pieces
    this.inString = false // inside a string within a value
    this.escaped = false // the previous character was a backslash inside a string
    this.depth = 0 // open brackets and braces within a value
    this.key = undefined
    this.count = 0
  }

  #fail(what, at) {
    throw new InputError(`${this.name} is not one JSON object: ${what} at character ${this.offset + at}`)
  }

  #unexpected(piece, at, expected) {
    this.#fail(`expected ${expected}, found ${JSON.stringify(piece[at])}`, at)
  }

  #take(piece, start, end) {
    const text = this.pieces.length === 0 ? piece.slice(start, end) : this.pieces.join('') + piece.slice(start, end)
    this.pieces = []
    return text
  }

  #member(text, at) {
    let value
    try {
      value = JSON.parse(text)
    } catch (e) {
      this.#fail(`the value of key ${JSON.stringify(this.key)} is not JSON (${e.message})`, at)
    }
    this.count++
    return [this.key, value]
  }

  // Reads the next piece of text; returns the members it completed, as [key, value].
  push(piece) {
    const members = []
    let start = this.state === KEY || this.state === VALUE ? 0 : -1
    const n = piece.length
    for (let i = 0; i < n; i++) {
      const c = piece.charCodeAt(i)
      switch (this.state) {
        case BEFORE:
          if (isSpace(c) || (c === BOM && this.offset + i === 0)) break
          if (c !== OPEN_BRACE) this.#unexpected(piece, i, 'an object ({)')
          this.state = FIRST
          break
        case FIRST:
        case NEXT:
          if (isSpace(c)) break
          if (c === QUOTE) {
            this.state = KEY
            this.escaped = false
            start = i
          } else if (c === CLOSE_BRACE && this.state === FIRST) {
            this.state = AFTER
          } else {
            this.#unexpected(piece, i, this.state === FIRST ? 'a key or }' : 'a key')
          }
          break
        case KEY:
          if (this.escaped) this.escaped = false
          else if (c === BACKSLASH) this.escaped = true
          else if (c === QUOTE) {
            const text = this.#take(piece, start, i + 1)
            start = -1
            try {
              this.key = JSON.parse(text)
            } catch (e) {
              this.#fail(`a key is not a JSON string (${e.message})`, i)
            }
            this.state = COLON
          } else if (c < 0x20) this.#fail('a control character inside a key', i)
          break
        case COLON:
          if (isSpace(c)) break
          if (c !== COLON_CHAR) this.#unexpected(piece, i, ':')
          this.state = VALUE_START
          break
        case VALUE_START:
          if (isSpace(c)) break
          if (c === COMMA || c === CLOSE_BRACE) this.#fail(`no value for key ${JSON.stringify(this.key)}`, i)
          this.state = VALUE
          this.inString = false
          this.escaped = false
          this.depth = 0
          start = i
        // falls through: the character is the value's first
        case VALUE:
          if (this.inString) {
            if (this.escaped) this.escaped = false
            else if (c === BACKSLASH) this.escaped = true
            else if (c === QUOTE) this.inString = false
          } else if (c === QUOTE) {
            this.inString = true
          } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            this.depth++
          } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
            if (this.depth > 0) this.depth--
            else if (c === CLOSE_BRACKET) this.#fail('an unmatched ]', i)
            else {
              members.push(this.#member(this.#take(piece, start, i), i))
              start = -1
              this.state = AFTER
            }
          } else if (c === COMMA && this.depth === 0) {
            members.push(this.#member(this.#take(piece, start, i), i))
            start = -1
            this.state = NEXT
          }
          break
        case AFTER:
          if (isSpace(c)) break
          this.#fail('text after the object (a file store with appended records? run compact on it, or use copy)', i)
      }
    }
    if (start >= 0) this.pieces.push(piece.slice(start))
    this.offset += n
    return members
  }

  // The input ended: throws unless it held one whole object.
  end() {
    if (this.state === AFTER) return
    if (this.state === BEFORE) throw new InputError(`${this.name} is empty: expected one JSON object`)
    throw new InputError(`${this.name} is not one JSON object: it ends inside the object, at character ${this.offset}`)
  }
}

module.exports = { ObjectReader, InputError }
