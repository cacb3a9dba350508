// The chart's notification settings: server.notifications becomes a ConfigMap the pod reads as SWITCHYARD_NOTIFY_FILE, and what it renders passes the router's own validation.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseNotifyConfig } from '../../src/control/notify-config.js';
import { only, render } from './chart.js';

const notifications = {
  sinks: [
    { name: 'releases', kind: 'slack', url: 'https://hooks.slack.com/services/T000/B000/XXXX', events: ['rollback', 'promote'] },
    { name: 'ci', kind: 'json', url: 'https://ci.example.com/hooks/switchyard', secretEnv: 'CI_HOOK_SECRET' },
  ],
  retry: { attempts: 3 },
};

describe('server.notifications', () => {
  it('is absent by default', () => {
    const manifests = render();
    expect(manifests.some((m) => m.metadata.name.endsWith('-notifications'))).toBe(false);
    const env = only(manifests, 'Deployment').spec?.template?.spec.containers[0]?.env ?? [];
    expect(env.some((e) => e.name === 'SWITCHYARD_NOTIFY_FILE')).toBe(false);
  });

  it('renders a ConfigMap mounted where SWITCHYARD_NOTIFY_FILE points, valid for the router, and rolls the pods when it changes', () => {
    const manifests = render({ values: { server: { notifications, extraEnv: [{ name: 'CI_HOOK_SECRET', valueFrom: { secretKeyRef: { name: 'hooks', key: 'ci' } } }] } } });
    const configMap = only(manifests.filter((m) => m.metadata.name.endsWith('-notifications')), 'ConfigMap');
    const file = parse(configMap.data?.['notify.yaml'] ?? '') as unknown;
    expect(file).toEqual(notifications);
    expect(parseNotifyConfig(file, 'notify.yaml', { CI_HOOK_SECRET: 'a-secret-of-16-chars' }).sinks.map((s) => s.name)).toEqual(['releases', 'ci']);
    const pod = only(manifests, 'Deployment').spec?.template;
    const container = pod?.spec.containers[0];
    expect(container?.env?.find((e) => e.name === 'SWITCHYARD_NOTIFY_FILE')?.value).toBe('/etc/switchyard/notifications/notify.yaml');
    expect(container?.volumeMounts?.find((m) => m.name === 'notifications')).toEqual({ name: 'notifications', mountPath: '/etc/switchyard/notifications', readOnly: true });
    expect(pod?.spec.volumes?.find((v) => v.name === 'notifications')?.configMap?.name).toBe(configMap.metadata.name);
    const before = pod?.metadata.annotations?.['checksum/notifications'];
    const changed = render({ values: { server: { notifications: { ...notifications, retry: { attempts: 4 } } } } });
    expect(only(changed, 'Deployment').spec?.template?.metadata.annotations?.['checksum/notifications']).not.toBe(before);
  });
});
