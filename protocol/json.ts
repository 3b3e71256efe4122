/**
 * JSON at the edges of the protocol: decoding untrusted UTF-8 JSON objects (JOSE headers, JWT
 * payloads, decrypted token responses) and encoding our own.
 */
import { malformed } from './errors.ts';
import { MAX_JSON_DEPTH } from './limits.ts';

/** A decoded JSON object. Values are unknown until a caller checks them. */
export type JsonObject = Record<string, unknown>;

// fatal: invalid UTF-8 is an error, not U+FFFD. ignoreBOM: a leading BOM stays in the text and
// makes JSON.parse fail; RFC 8259 §8.1 forbids sending one and we do not guess.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8 bytes holding one JSON object. Duplicate member names resolve to the last one, as
 * ECMAScript JSON.parse does, which RFC 7515 §5.2 permits. Anything that is not valid UTF-8 or not
 * a JSON object (arrays, strings, null) is ERR_PROTOCOL_MALFORMED.
 */
export function parseJsonObject(bytes: Uint8Array, what: string): JsonObject {
  let value: unknown;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw malformed(what, 'not valid UTF-8 JSON');
  }
  if (nestingDepth(text) > MAX_JSON_DEPTH) throw malformed(what, 'JSON nested too deeply');
  try {
    value = JSON.parse(text);
  } catch {
    // SyntaxError; the message stays generic, JSON.parse's own text quotes the input.
    throw malformed(what, 'not valid UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(what, 'not a JSON object');
  }
  return value as JsonObject;
}

/**
 * The deepest bracket nesting of JSON text, ignoring brackets inside strings. Runs before
 * JSON.parse; on text that is not JSON the number is meaningless but harmless (the parse fails).
 */
function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // A backslash escapes the next character; an unescaped quote ends the string.
      if (c === 0x5c) {
        i++;
      } else if (c === 0x22) {
        inString = false;
      }
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/** Serializes a plain object to UTF-8 JSON. Non-serializable input is a caller bug. */
export function encodeJsonObject(value: JsonObject): Buffer {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('expected a plain JSON object');
  }
  return Buffer.from(JSON.stringify(value), 'utf8');
}
