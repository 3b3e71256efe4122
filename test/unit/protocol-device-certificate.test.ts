import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asciiExtensionValue,
  BROKER_PLUGIN_CLIENT_ID,
  BROKER_PLUGIN_ISSUER,
  brokerRedirectUri,
  CERT_JOIN_TYPE,
  CSR_SUBJECT_CN,
  DEVICE_CERT_OID,
  DRS_APP_ID,
  DRS_RESOURCE,
  guidExtensionValue,
  guidFromBytes,
  guidToBytes,
  readAsciiExtensionValue,
  readGuidExtensionValue,
  WINDOWS_BROKER_CLIENT_ID,
} from '../../protocol/index.ts';
import { codeOf } from '../shared/protocol.ts';

describe('GUIDs in .NET byte order (§1.4)', () => {
  it('puts the first three fields little-endian, as Guid.ToByteArray does', () => {
    expect(guidToBytes('00112233-4455-6677-8899-aabbccddeeff').toString('hex')).toBe(
      '33221100554477668899aabbccddeeff',
    );
    expect(guidFromBytes(Buffer.from('33221100554477668899aabbccddeeff', 'hex'))).toBe(
      '00112233-4455-6677-8899-aabbccddeeff',
    );
  });

  it('agrees with the published object id -> S-1-12-1 SID example [AADI-CU]', () => {
    // Convert-AADIntObjectIDtoSID: the SID's four parts are the GUID bytes read as u32 LE.
    const b = guidToBytes('e06e3596-82c0-4f31-ac5a-439a308e3dc2');
    const sid = [0, 4, 8, 12].map((o) => b.readUInt32LE(o)).join('-');
    expect(`S-1-12-1-${sid}`).toBe('S-1-12-1-3765319062-1328644800-2588105388-3258814000');
  });

  it('accepts upper case (the CSR subject) and prints lower case', () => {
    expect(guidFromBytes(guidToBytes(CSR_SUBJECT_CN))).toBe(CSR_SUBJECT_CN.toLowerCase());
  });

  it('round-trips any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        expect(guidToBytes(guidFromBytes(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it.each([
    '{00112233-4455-6677-8899-aabbccddeeff}',
    '00112233445566778899aabbccddeeff',
    '00112233-4455-6677-8899-aabbccddeefg',
    '',
  ])('rejects %j', (text) => {
    expect(codeOf(() => guidToBytes(text))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('rejects 15 or 17 bytes', () => {
    expect(codeOf(() => guidFromBytes(Buffer.alloc(15)))).toBe('ERR_PROTOCOL_MALFORMED');
    expect(codeOf(() => guidFromBytes(Buffer.alloc(17)))).toBe('ERR_PROTOCOL_MALFORMED');
  });
});

describe('device certificate extension values (§1.4)', () => {
  it('wraps GUIDs and ASCII in a DER OCTET STRING [AADI-CU]', () => {
    const id = '6b5d2bd0-6a46-4a61-9f36-6ba1b0e1d4f2';
    const value = guidExtensionValue(id);
    expect(value.subarray(0, 2)).toEqual(Buffer.of(0x04, 0x10));
    expect(value.subarray(2)).toEqual(guidToBytes(id));
    expect(readGuidExtensionValue(value)).toBe(id);
    expect(asciiExtensionValue(CERT_JOIN_TYPE.joined)).toEqual(Buffer.of(0x04, 0x01, 0x31));
    expect(readAsciiExtensionValue(asciiExtensionValue('EU'))).toBe('EU');
  });

  it.each([
    ['the bare 16 bytes', Buffer.alloc(16)],
    ['a wrong tag', Buffer.concat([Buffer.of(0x0c, 0x10), Buffer.alloc(16)])],
    ['a long-form length', Buffer.concat([Buffer.of(0x04, 0x81, 0x10), Buffer.alloc(16)])],
    ['a length mismatch', Buffer.concat([Buffer.of(0x04, 0x10), Buffer.alloc(15)])],
    ['a 15-byte GUID', Buffer.concat([Buffer.of(0x04, 0x0f), Buffer.alloc(15)])],
  ])('rejects a GUID value with %s', (_name, value) => {
    expect(codeOf(() => readGuidExtensionValue(value))).toBe('ERR_PROTOCOL_MALFORMED');
  });

  it('rejects non-printable ASCII values, and caller mistakes', () => {
    expect(codeOf(() => readAsciiExtensionValue(Buffer.of(0x04, 0x01, 0x00)))).toBe(
      'ERR_PROTOCOL_MALFORMED',
    );
    expect(() => asciiExtensionValue('É')).toThrow(RangeError);
    expect(() => asciiExtensionValue('x'.repeat(128))).toThrow(RangeError);
  });
});

describe('well-known values', () => {
  it('matches prt-protocol.md', () => {
    expect(DEVICE_CERT_OID).toEqual({
      deviceId: '1.2.840.113556.1.5.284.2',
      authUserObjectId: '1.2.840.113556.1.5.284.3',
      tenantId: '1.2.840.113556.1.5.284.5',
      joinType: '1.2.840.113556.1.5.284.7',
      region: '1.2.840.113556.1.5.284.8',
    });
    expect(CSR_SUBJECT_CN).toBe('7E980AD9-B86D-4306-9425-9AC066FB014A');
    expect(WINDOWS_BROKER_CLIENT_ID).toBe('38aa3b87-a06d-4817-b275-7a316988d93b');
    expect(BROKER_PLUGIN_CLIENT_ID).toBe('29d9ed98-a469-4536-ade2-f981bc1d605e');
    expect(DRS_RESOURCE).toBe('urn:ms-drs:enterpriseregistration.windows.net');
    expect(DRS_APP_ID).toBe('01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9');
    expect(BROKER_PLUGIN_ISSUER).toBe('aad:brokerplugin');
    expect(brokerRedirectUri(WINDOWS_BROKER_CLIENT_ID)).toBe(
      'ms-appx-web://Microsoft.AAD.BrokerPlugin/38aa3b87-a06d-4817-b275-7a316988d93b',
    );
  });
});
