/**
 * The one marshaller: every TPM structure is a Codec built from the combinators below, and every
 * command is a table row of codecs (commands.ts). Reading is bounded by construction: a Reader
 * never reads past its end, a TPM2B never past its size, a list never past its cap, and trailing
 * bytes inside a sized structure are an error. Failures throw WireError with the TPM_RC that the
 * spec gives for that unmarshalling failure (Part 3 §6.2, Table 3); the engine adds the parameter,
 * handle or session number.
 */
import { TPM_RC } from './rc.ts';

export class WireError extends Error {
  /** A format-one TPM_RC base (e.g. TPM_RC_SIZE), without a parameter number. */
  readonly rc: number;

  constructor(rc: number, message: string) {
    super(message);
    this.rc = rc;
    this.name = 'WireError';
  }
}

export class Reader {
  private pos: number;
  private readonly buf: Uint8Array;
  private readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new WireError(TPM_RC.INSUFFICIENT, `need ${n} bytes, have ${this.end - this.pos}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    const v = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A copy of the next n bytes (callers may keep it; the command buffer is reused). */
  bytes(n: number): Buffer {
    this.need(n);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** A reader over the next n bytes, which this reader then skips. */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  /** Everything from the current position to the end, as a view (no copy). */
  rest(): Uint8Array {
    const out = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }
}

export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  u64(v: bigint): this {
    this.u32(Number((v >> 32n) & 0xffffffffn));
    return this.u32(Number(v & 0xffffffffn));
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Reserves a u16 size field; the returned function fills it with the bytes written since. */
  sizeU16(): () => void {
    this.room(2);
    const at = this.pos;
    this.pos += 2;
    return () => {
      const size = this.pos - at - 2;
      if (size > 0xffff) throw new RangeError('TPM2B larger than 65535 bytes');
      this.buf.writeUInt16BE(size, at);
    };
  }

  /** Reserves a u32 size field (response parameterSize, command authorizationSize). */
  sizeU32(): () => void {
    this.room(4);
    const at = this.pos;
    this.pos += 4;
    return () => {
      this.buf.writeUInt32BE(this.pos - at - 4, at);
    };
  }

  patchU32(at: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, at);
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** A wire type: reads and writes one value. */
export interface Codec<T> {
  readonly name: string;
  read(r: Reader): T;
  write(w: Writer, v: T): void;
  /** True for TPM2B types: the first parameter can be session-encrypted only if it is one. */
  readonly sized?: boolean;
}

export type Decoded<C> = C extends Codec<infer T> ? T : never;

export const u8: Codec<number> = {
  name: 'UINT8',
  read: (r) => r.u8(),
  write: (w, v) => void w.u8(v),
};
export const u16: Codec<number> = {
  name: 'UINT16',
  read: (r) => r.u16(),
  write: (w, v) => void w.u16(v),
};
export const u32: Codec<number> = {
  name: 'UINT32',
  read: (r) => r.u32(),
  write: (w, v) => void w.u32(v),
};
export const u64: Codec<bigint> = {
  name: 'UINT64',
  read: (r) => r.u64(),
  write: (w, v) => void w.u64(v),
};

/** An interface type (TPMI_*): a base integer codec restricted to a set, else `rc`. */
export function oneOf(
  name: string,
  base: Codec<number>,
  allowed: readonly number[],
  rc: number,
): Codec<number> {
  const set = new Set(allowed);
  return {
    name,
    read(r) {
      const v = base.read(r);
      if (!set.has(v)) throw new WireError(rc, `${name}: 0x${v.toString(16)} is not allowed`);
      return v;
    },
    write(w, v) {
      base.write(w, v);
    },
  };
}

/** A TPM2B of raw bytes: u16 size, then at most `max` bytes (Part 2 §10.4). */
export function tpm2b(name: string, max: number): Codec<Buffer> {
  return {
    name,
    sized: true,
    read(r) {
      const n = r.u16();
      if (n > max) throw new WireError(TPM_RC.SIZE, `${name}: size ${n} exceeds ${max}`);
      return r.bytes(n);
    },
    write(w, v) {
      if (v.length > max) throw new RangeError(`${name}: ${v.length} bytes exceeds ${max}`);
      w.u16(v.length);
      w.bytes(v);
    },
  };
}

/**
 * A TPM2B that wraps a structure (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPM2B_ECC_POINT, ...):
 * the inner structure must fill the size exactly (Part 2 §4.4 "size ... of the structure").
 * An empty TPM2B is an error unless `optional`, which reads it as undefined.
 */
export function sized<T>(name: string, inner: Codec<T>): Codec<T>;
export function sized<T>(
  name: string,
  inner: Codec<T>,
  opts: { optional: true },
): Codec<T | undefined>;
export function sized<T>(
  name: string,
  inner: Codec<T>,
  opts?: { optional: true },
): Codec<T | undefined> {
  return {
    name,
    sized: true,
    read(r) {
      const n = r.u16();
      if (n === 0) {
        if (opts?.optional) return undefined;
        throw new WireError(TPM_RC.SIZE, `${name}: empty`);
      }
      const sub = r.sub(n);
      const v = inner.read(sub);
      if (sub.remaining !== 0)
        throw new WireError(TPM_RC.SIZE, `${name}: ${sub.remaining} bytes left over`);
      return v;
    },
    write(w, v) {
      const done = w.sizeU16();
      if (v !== undefined) inner.write(w, v);
      done();
    },
  };
}

type FieldCodecs = Record<string, Codec<unknown> | Dependent<unknown>>;
type FieldValue<C> = C extends Codec<infer T> ? T : C extends Dependent<infer T> ? T : never;
export type StructOf<F extends FieldCodecs> = { [K in keyof F]: FieldValue<F[K]> };

/**
 * A field whose codec is chosen by a field read before it in the same structure: the unions of
 * Part 2 (TPMU_PUBLIC_PARMS selected by TPMT_PUBLIC.type, TPMU_SIGNATURE by sigAlg, ...).
 */
export interface Dependent<T> {
  readonly dependsOn: string;
  readonly name: string;
  pick(selector: number): Codec<T> | undefined;
  /** The TPM_RC when the selector has no case. */
  readonly rc: number;
}

export function dependent<T>(
  name: string,
  dependsOn: string,
  cases: Record<number, Codec<T>>,
  rc: number = TPM_RC.SELECTOR,
): Dependent<T> {
  const table = new Map<number, Codec<T>>(Object.entries(cases).map(([k, c]) => [Number(k), c]));
  return { name, dependsOn, rc, pick: (s) => table.get(s) };
}

function isDependent(c: Codec<unknown> | Dependent<unknown>): c is Dependent<unknown> {
  return 'dependsOn' in c;
}

/** A structure: fields in declaration order (Part 2 tables list them in wire order). */
export function struct<F extends FieldCodecs>(name: string, fields: F): Codec<StructOf<F>> {
  const entries = Object.entries(fields);
  const first = entries[0]?.[1];
  return {
    name,
    sized:
      first !== undefined && !isDependent(first) && first.sized === true && entries.length === 1,
    read(r) {
      const out: Record<string, unknown> = {};
      for (const [key, c] of entries) {
        if (isDependent(c)) {
          const sel = out[c.dependsOn] as number;
          const chosen = c.pick(sel);
          if (!chosen)
            throw new WireError(c.rc, `${name}.${key}: no case for 0x${sel.toString(16)}`);
          out[key] = chosen.read(r);
        } else {
          out[key] = c.read(r);
        }
      }
      return out as StructOf<F>;
    },
    write(w, v) {
      const obj = v as Record<string, unknown>;
      for (const [key, c] of entries) {
        if (isDependent(c)) {
          const sel = obj[c.dependsOn] as number;
          const chosen = c.pick(sel);
          if (!chosen) throw new RangeError(`${name}.${key}: no case for 0x${sel.toString(16)}`);
          chosen.write(w, obj[key]);
        } else {
          c.write(w, obj[key]);
        }
      }
    },
  };
}

/** A structure with no fields: the empty arm of a union (TPMS_EMPTY, Part 2 §10.1). */
export const empty: Codec<Record<string, never>> = {
  name: 'TPMS_EMPTY',
  read: () => ({}),
  write: () => {},
};

/** A counted list (TPML_*): u32 count, then that many items, at most `max` (Part 2 §10.9). */
export function list<T>(name: string, item: Codec<T>, max: number): Codec<T[]> {
  return {
    name,
    read(r) {
      const n = r.u32();
      if (n > max) throw new WireError(TPM_RC.SIZE, `${name}: count ${n} exceeds ${max}`);
      const out: T[] = [];
      for (let i = 0; i < n; i++) out.push(item.read(r));
      return out;
    },
    write(w, v) {
      if (v.length > max) throw new RangeError(`${name}: ${v.length} items exceeds ${max}`);
      w.u32(v.length);
      for (const x of v) item.write(w, x);
    },
  };
}

/** Marshals one value to bytes. */
export function marshal<T>(codec: Codec<T>, v: T): Buffer {
  const w = new Writer();
  codec.write(w, v);
  return w.finish();
}

/** Unmarshals exactly one value: trailing bytes are TPM_RC_SIZE. */
export function unmarshal<T>(codec: Codec<T>, bytes: Uint8Array): T {
  const r = new Reader(bytes);
  const v = codec.read(r);
  if (r.remaining !== 0)
    throw new WireError(TPM_RC.SIZE, `${codec.name}: ${r.remaining} trailing bytes`);
  return v;
}
