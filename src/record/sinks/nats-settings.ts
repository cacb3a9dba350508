// The JetStream sink's settings from the environment: servers, stream, this replica's subject and dedup-id prefix.
import { hostname } from 'node:os';
import type { EnvConfig } from '../../config/env.js';
import { subjectToken } from './jetstream.js';
import type { NatsSinkSettings } from './sink.js';

/**
 * One subject per replica (`switchyard.records.<instance>` unless SWITCHYARD_NATS_SUBJECT says otherwise), so each
 * replica's records stay in order in the stream; the dedup-id prefix adds the start time, so a restarted replica never
 * reuses an id the stream may still remember.
 */
export function natsSinkSettings(env: Pick<EnvConfig, 'SWITCHYARD_NATS_URL' | 'SWITCHYARD_NATS_STREAM' | 'SWITCHYARD_NATS_SUBJECT' | 'SWITCHYARD_NATS_CREATE_STREAM' | 'SWITCHYARD_INSTANCE_ID'>, startedAt = Date.now()): NatsSinkSettings {
  const instance = env.SWITCHYARD_INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  return {
    servers: env.SWITCHYARD_NATS_URL,
    stream: env.SWITCHYARD_NATS_STREAM,
    subject: env.SWITCHYARD_NATS_SUBJECT ?? `switchyard.records.${subjectToken(instance)}`,
    createStream: env.SWITCHYARD_NATS_CREATE_STREAM,
    sourceId: `${subjectToken(instance)}-${startedAt.toString(36)}`,
  };
}
