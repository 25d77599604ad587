import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_CONFIG, SETTINGS } from '../../server/config.js';
import { ROOT } from '../helpers/prep.js';

// deploy/ cannot run here (no Docker engine, no cluster); test/integration/haproxy.test.ts runs its HAProxy
// config with real processes. This keeps the Compose file and the Kubernetes manifests in step with
// the server: the settings they use exist, the probes hit the right endpoints, and every grace period
// covers the drain deadline it is paired with.
const read = (p: string) => readFileSync(join(ROOT, 'deploy', p), 'utf8');
const compose = read('compose.yaml');
const k8s = read('k8s/tokstream.yaml');
const haproxy = read('haproxy/haproxy.cfg');
/** Time the server needs after the drain deadline to close what is left (typed closes, then terminate). */
const CLOSE_SLACK_SEC = 5;

function num(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  if (!m) throw new Error(`${what} not found`);
  return Number(m[1]);
}

describe('deploy/', () => {
  it('uses only settings the server knows', () => {
    const known = new Set<string>(SETTINGS.map((s) => s.env));
    // HAProxy's own addresses
    const elsewhere = new Set(['TOKSTREAM_LB_BIND', 'TOKSTREAM_LB_STATS', 'TOKSTREAM_NODE_1', 'TOKSTREAM_NODE_2']);
    const used = new Set([...`${compose}\n${k8s}`.matchAll(/\b(TOKSTREAM_[A-Z0-9_]+)\b/g)].map((m) => m[1]));
    expect(used.size).toBeGreaterThan(3);
    for (const name of used) expect(known.has(name) || elsewhere.has(name), name).toBe(true);
  });

  it('checks readiness on /readyz and liveness on /healthz', () => {
    expect(haproxy).toMatch(/^\s*option httpchk GET \/readyz$/m);
    expect(k8s).toMatch(/readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
    expect(k8s).toMatch(/livenessProbe:\s*\n\s*httpGet: \{ path: \/healthz/);
    expect(compose).toMatch(/127\.0\.0\.1:8080\/healthz/);
  });

  it('gives the drain its whole deadline before the orchestrator kills the server', () => {
    const k8sDrain = num(k8s, /TOKSTREAM_DRAIN_TIMEOUT_MS, value: "(\d+)"/, 'k8s drain deadline') / 1000;
    const preStop = num(k8s, /preStop:\s*\n\s*exec: \{ command: \["sleep", "(\d+)"\] \}/, 'preStop sleep');
    const grace = num(k8s, /terminationGracePeriodSeconds: (\d+)/, 'terminationGracePeriodSeconds');
    expect(grace).toBeGreaterThanOrEqual(preStop + k8sDrain + CLOSE_SLACK_SEC);
    const composeDrain = num(compose, /TOKSTREAM_DRAIN_TIMEOUT_MS: "(\d+)"/, 'compose drain deadline') / 1000;
    const stopGrace = num(compose, /stop_grace_period: (\d+)s/, 'stop_grace_period');
    expect(stopGrace).toBeGreaterThanOrEqual(composeDrain + CLOSE_SLACK_SEC);
    expect(k8sDrain * 1000).toBe(DEFAULT_SERVER_CONFIG.drainTimeoutMs); // the manifests spell out the default
  });

  it('runs at least two servers behind the balancer', () => {
    expect([...haproxy.matchAll(/^\s*server \S+ "\$\{TOKSTREAM_NODE_\d\}" check$/gm)]).toHaveLength(2);
    expect(compose).toMatch(/TOKSTREAM_NODE_1: tokstream-1:8080/);
    expect(compose).toMatch(/TOKSTREAM_NODE_2: tokstream-2:8080/);
    expect(num(k8s, /replicas: (\d+)/, 'replicas')).toBeGreaterThanOrEqual(2);
  });
});
