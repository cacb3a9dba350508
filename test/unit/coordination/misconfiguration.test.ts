// Which Redis connection errors are settings to fix (said once, with the fix) rather than outages to retry quietly.
import { describe, expect, it } from 'vitest';
import { redisMisconfiguration } from '../../../src/coordination/redis.js';

describe('redisMisconfiguration', () => {
  it.each(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID'])('names the CA setting for an untrusted certificate (%s)', (code) => {
    expect(redisMisconfiguration(code)).toMatch(/NODE_EXTRA_CA_CERTS.*SWITCHYARD_REDIS_URL/);
  });

  it('asks whether the port speaks TLS when the handshake itself fails', () => {
    expect(redisMisconfiguration('ERR_SSL_WRONG_VERSION_NUMBER')).toMatch(/rediss:\/\/ is TLS/);
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'unknown'])('leaves %s to the retry loop', (code) => {
    expect(redisMisconfiguration(code)).toBeNull();
  });
});
