/**
 * The JSON-RPC 2.0 framing (broker/rpc.ts) on its own: what counts as a request, a notification
 * or an error, and that no input makes the parser throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nestsDeeperThan, parseMessage, RPC_ERRORS } from '../../broker/rpc.ts';

describe('parseMessage', () => {
  it('accepts a request with by-name params and a string or integer id', () => {
    expect(
      parseMessage('{"jsonrpc":"2.0","id":"a1","method":"signOut","params":{"accountId":"x"}}', 8),
    ).toEqual({
      kind: 'request',
      request: { id: 'a1', method: 'signOut', params: { accountId: 'x' } },
    });
    expect(parseMessage('{"jsonrpc":"2.0","id":0,"method":"getAccounts"}', 8)).toEqual({
      kind: 'request',
      request: { id: 0, method: 'getAccounts', params: undefined },
    });
  });

  it('a request without id is a notification (§4.1)', () => {
    expect(parseMessage('{"jsonrpc":"2.0","method":"getAccounts"}', 8)).toEqual({
      kind: 'notification',
      method: 'getAccounts',
    });
  });

  it('answers the spec examples of §7 with the codes the spec gives', () => {
    // "rpc call with invalid JSON", "invalid Request object", "empty Array", "invalid Batch".
    expect(
      parseMessage('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', 8),
    ).toMatchObject({
      kind: 'invalid',
      id: null,
      code: RPC_ERRORS.parseError,
    });
    expect(parseMessage('{"jsonrpc": "2.0", "method": 1, "params": "bar"}', 8)).toMatchObject({
      kind: 'invalid',
      id: null,
      code: RPC_ERRORS.invalidRequest,
    });
    expect(parseMessage('[]', 8)).toMatchObject({ code: RPC_ERRORS.invalidRequest, id: null });
    expect(parseMessage('[1,2,3]', 8)).toMatchObject({ code: RPC_ERRORS.invalidRequest, id: null });
  });

  it('by-position params are -32602 naming params', () => {
    expect(parseMessage('{"jsonrpc":"2.0","id":9,"method":"signOut","params":["x"]}', 8)).toEqual({
      kind: 'invalid',
      id: 9,
      code: RPC_ERRORS.invalidParams,
      message: 'Invalid params: params must be an object (by-name parameters)',
      field: 'params',
    });
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const r = parseMessage(text, 8);
        expect(['request', 'notification', 'invalid']).toContain(r.kind);
      }),
    );
  });
});

describe('nestsDeeperThan', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(nestsDeeperThan('{"a":[[1]]}', 3)).toBe(false);
    expect(nestsDeeperThan('{"a":[[[1]]]}', 3)).toBe(true);
    expect(nestsDeeperThan('{"a":"[[[[[[[[[[\\"[[[["}', 1)).toBe(false);
  });

  it('agrees with the depth of any JSON value', () => {
    const depth = (v: unknown): number =>
      typeof v === 'object' && v !== null
        ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depth))
        : 0;
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 0, max: 6 }), (v, max) => {
        expect(nestsDeeperThan(JSON.stringify(v), max)).toBe(depth(v) > max);
      }),
    );
  });
});
