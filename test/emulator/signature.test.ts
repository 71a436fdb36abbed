import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { roaSignature, roaStringToSign } from '../../emulator/roa-signature.js';
import {
  canonicalizedQuery,
  parseRpcTimestamp,
  percentEncode,
  rpcSignature,
  rpcStringToSign,
  signRpcParams,
} from '../../emulator/signature.js';

// The published example from "Request signatures" (doc-detail/28139).
const PUBLISHED = {
  AccessKeyId: 'testid',
  Action: 'DescribeRegions',
  Format: 'XML',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
  SignatureVersion: '1.0',
  Timestamp: '2016-02-23T12:46:24Z',
  Version: '2014-05-26',
};

describe('RPC signature v1', () => {
  it('reproduces the published string to sign and signature', () => {
    const sts = rpcStringToSign('GET', PUBLISHED);
    expect(sts).toBe(
      'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1' +
        '%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0' +
        '%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
    );
    expect(rpcSignature(sts, 'testsecret')).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
    expect(percentEncode('OLeaidS1JvxuMvnyHOwuJ+uX5qY=')).toBe('OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D');
  });

  it('ignores Signature itself and sorts the parameters', () => {
    const shuffled = Object.fromEntries(Object.entries(PUBLISHED).reverse());
    expect(signRpcParams('GET', { ...shuffled, Signature: 'junk' }, 'testsecret').Signature).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });

  it('percent-encodes per RFC 3986', () => {
    expect(percentEncode("a b*c~d+e/f!'()é")).toBe("a%20b%2Ac~d%2Be%2Ff%21%27%28%29%C3%A9");
    expect(canonicalizedQuery({ b: '2', a: 'x y', Signature: 's' })).toBe('a=x%20y&b=2');
  });

  it('is method-sensitive', () => {
    expect(rpcStringToSign('POST', PUBLISHED).startsWith('POST&%2F&')).toBe(true);
    expect(rpcSignature(rpcStringToSign('POST', PUBLISHED), 'testsecret')).not.toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });

  it('parses only well-formed UTC timestamps', () => {
    expect(parseRpcTimestamp('2016-02-23T12:46:24Z')).toBe(Date.UTC(2016, 1, 23, 12, 46, 24));
    expect(parseRpcTimestamp('2016-02-23T12:46:24.123Z')).toBe(Date.UTC(2016, 1, 23, 12, 46, 24));
    for (const bad of ['2016-02-23 12:46:24', '2016-02-23T12:46:24+08:00', '2016-02-31T12:00:00Z', '2016-02-23T25:00:00Z', '']) {
      expect(parseRpcTimestamp(bad)).toBeUndefined();
    }
  });
});

describe('ROA signature', () => {
  it('builds the string to sign the way pop-core ROAClient does', () => {
    const headers = {
      accept: 'application/json',
      'content-md5': '1B2M2Y8AsgTpgAmY7PhCfg==',
      date: 'Tue, 23 Feb 2016 12:46:24 GMT',
      'x-acs-version': '2016-06-07',
      'x-acs-signature-nonce': 'n1',
      'x-acs-security-token': ' tok\nen ',
      host: 'ignored',
    };
    const sts = roaStringToSign('GET', '/tokens', headers, { b: '2', a: '1' });
    expect(sts).toBe(
      'GET\napplication/json\n1B2M2Y8AsgTpgAmY7PhCfg==\n\nTue, 23 Feb 2016 12:46:24 GMT\n' +
        'x-acs-security-token:tok en\nx-acs-signature-nonce:n1\nx-acs-version:2016-06-07\n/tokens?a=1&b=2',
    );
    // Keyed by the bare secret, unlike RPC's secret + "&".
    expect(roaSignature(sts, 'k')).not.toBe(rpcSignature(sts, 'k'));
    expect(roaSignature(sts, 'k')).toBe(createHmac('sha1', 'k').update(sts).digest('base64'));
  });
});
