// The streaming sinks' settings from the environment: JetStream (servers, stream, subject) and CloudEvents (URL, batching), with this replica's source id.
import { hostname } from 'node:os';
import type { EnvConfig } from '../../config/env.js';
import { subjectToken } from './jetstream.js';
import type { CloudEventsSinkSettings, NatsSinkSettings } from './sink.js';

/** This replica's id, unique per process start: the prefix of every record's dedup or event id. */
export function sourceIdFor(instanceId: string | undefined, startedAt = Date.now()): string {
  return `${subjectToken(instanceId ?? `${hostname()}-${process.pid}`)}-${startedAt.toString(36)}`;
}

/** Settings of the CloudEvents sink (SWITCHYARD_CLOUDEVENTS_URL is required with it; the schema says so). */
export function cloudEventsSinkSettings(env: Pick<EnvConfig, 'SWITCHYARD_CLOUDEVENTS_URL' | 'SWITCHYARD_CLOUDEVENTS_BATCH' | 'SWITCHYARD_INSTANCE_ID'>, startedAt = Date.now()): CloudEventsSinkSettings {
  if (env.SWITCHYARD_CLOUDEVENTS_URL === undefined) throw new Error('SWITCHYARD_CLOUDEVENTS_URL: required with SWITCHYARD_PAIRS_SINK=cloudevents (the receiver\'s http(s) URL)');
  return { url: env.SWITCHYARD_CLOUDEVENTS_URL, source: sourceIdFor(env.SWITCHYARD_INSTANCE_ID, startedAt), batchSize: env.SWITCHYARD_CLOUDEVENTS_BATCH };
}

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
    sourceId: sourceIdFor(env.SWITCHYARD_INSTANCE_ID, startedAt),
  };
}
