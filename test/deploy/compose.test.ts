// Static checks of the deployment files (docker-compose.yml, Dockerfile,
// deploy/postgres/init.sql). No Docker engine is needed; the one test that
// shells out to `docker compose config` is skipped when the client or its
// compose plugin is missing.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { TEMPORAL_SERVER_VERSION } from '../../src/temporal/server-binaries.js';
import { DEFAULT_HISTORY_SHARDS, dynamicConfigYaml } from '../../src/temporal/server-profile.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string) => readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');

// Resolve `${VAR:-default}` / `${VAR-default}` / `${VAR}` the way compose does
// with an empty environment, so we check what a plain `docker compose up` gets.
// `$$` is compose's escape for a literal `$`.
const interpolate = (s: string): string =>
  s
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name, def) => def ?? '')
    .replace(/\$\$/g, '$');

const compose = parse(read('docker-compose.yml'));
const services: Record<string, any> = compose.services;
const svc = (name: string) => {
  expect(services, `service ${name}`).toHaveProperty(name);
  return services[name];
};

// environment may be a map or a list of KEY=VALUE strings.
const envOf = (name: string): Record<string, string> => {
  const env = svc(name).environment ?? {};
  const entries: [string, unknown][] = Array.isArray(env)
    ? env.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])
    : Object.entries(env);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(String(v ?? ''))]));
};

// depends_on may be a list (condition service_started) or a map.
const dependsOn = (name: string): Record<string, string> => {
  const d = svc(name).depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((s: string) => [s, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([k, v]: [string, any]) => [k, v?.condition ?? 'service_started']));
};

const workerEnv = envOf('worker');
const shardUrls = (workerEnv.LEDGER_SHARD_URLS ?? '').split(',').filter((u) => u.trim()).map((u) => new URL(u.trim()));

describe('docker-compose.yml', () => {
  it('declares the expected services', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['dispatcher', 'grafana', 'postgresql', 'prometheus', 'temporal', 'temporal-setup', 'temporal-ui', 'worker'].sort(),
    );
  });

  it('scrapes the worker and Temporal with Prometheus, and provisions Grafana with it and the dashboard', () => {
    const prometheus = svc('prometheus');
    const promConfig = parse(read('deploy/prometheus/prometheus.yml'));
    const mounted = (name: string, target: string) => (svc(name).volumes as string[]).find((v) => v.split(':')[1] === target)?.split(':')[0];
    expect(mounted('prometheus', '/etc/prometheus/prometheus.yml')).toBe('./deploy/prometheus/prometheus.yml');
    expect(prometheus.depends_on).toBeDefined();
    const targets = (promConfig.scrape_configs as { job_name: string; static_configs: { targets: string[] }[] }[])
      .flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    // What the worker and the server actually listen on.
    expect(targets).toContain(`worker:${workerEnv.METRICS_PORT}`);
    expect(targets).toContain(`worker:${workerEnv.TEMPORAL_METRICS_PORT}`);
    expect(targets).toContain(`temporal:${envOf('temporal').PROMETHEUS_ENDPOINT!.split(':').pop()}`);

    expect(dependsOn('grafana')).toHaveProperty('prometheus');
    expect(mounted('grafana', '/etc/grafana/provisioning')).toBe('./deploy/grafana/provisioning');
    const datasources = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')).datasources as { uid: string; type: string; url: string }[];
    expect(datasources).toContainEqual(expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' }));
    const providers = parse(read('deploy/grafana/provisioning/dashboards/transfers.yml')).providers as { options: { path: string } }[];
    const dashboardsDir = providers[0]!.options.path;
    expect(mounted('grafana', dashboardsDir)).toBe('./deploy/grafana/dashboards');
    // Every panel queries the provisioned datasource.
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/transfers.json')) as { panels: { targets: { datasource: { uid: string } }[] }[] };
    for (const target of dashboard.panels.flatMap((p) => p.targets)) expect(datasources.map((d) => d.uid)).toContain(target.datasource.uid);
  });

  it('runs the webhook dispatcher on the same shards, with its own database created at init', () => {
    const dispatcher = svc('dispatcher');
    expect(dispatcher.command).toEqual(['node', 'bin/transfer.js', 'dispatch']);
    const env = envOf('dispatcher');
    expect(env.LEDGER_SHARD_URLS).toBe(workerEnv.LEDGER_SHARD_URLS);
    expect(env.LEDGER_SLOT_MAP).toBe(workerEnv.LEDGER_SLOT_MAP);
    const messagesDb = new URL(env.MESSAGES_DATABASE_URL!).pathname.slice(1);
    expect(read('deploy/postgres/init.sql')).toContain(`CREATE DATABASE ${messagesDb};`);
  });

  it('pins every image to an explicit, non-latest tag', () => {
    const images = Object.entries(services).filter(([, s]) => s.image);
    expect(images.length).toBeGreaterThanOrEqual(4);
    for (const [name, s] of images) {
      const image = interpolate(s.image);
      // tag = text after the last ':' that is not part of a registry host:port
      const m = /^[^@]+:([^:/@]+)(@sha256:[0-9a-f]{64})?$/.exec(image);
      expect(m, `${name}: ${image} has no tag`).not.toBeNull();
      expect(m![1], `${name}: ${image}`).not.toBe('latest');
      expect(m![1], `${name}: ${image} tag must carry a version`).toMatch(/\d/);
    }
    expect(interpolate(svc('postgresql').image)).toMatch(/^postgres:17\.\d+$/);
    expect(svc('worker').build).toBeDefined();
  });

  it('publishes ports on 127.0.0.1 only', () => {
    let count = 0;
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        count++;
        // short syntax is [HOST_IP:]HOST_PORT:CONTAINER_PORT
        const hostIp = typeof p === 'object' ? p.host_ip : interpolate(String(p)).split(':').slice(0, -2)[0];
        expect(hostIp, `${name}: port ${JSON.stringify(p)}`).toBe('127.0.0.1');
      }
    }
    expect(count).toBeGreaterThan(0);
  });

  it('has healthchecks on postgresql, temporal and worker', () => {
    for (const name of ['postgresql', 'temporal', 'worker']) {
      const test = svc(name).healthcheck?.test;
      expect(test, `${name} healthcheck`).toBeDefined();
      expect(svc(name).healthcheck.disable ?? false).toBe(false);
    }
    const cmd = (name: string) => [svc(name).healthcheck.test].flat().join(' ');
    expect(cmd('postgresql')).toContain('pg_isready');
    expect(cmd('worker')).toContain(`:${workerEnv.METRICS_PORT}/metrics`);
  });

  it('orders startup through depends_on conditions', () => {
    expect(dependsOn('temporal')).toEqual({ postgresql: 'service_healthy' });
    expect(dependsOn('temporal-setup')).toEqual({ temporal: 'service_healthy' });
    expect(dependsOn('temporal-ui')).toHaveProperty('temporal');
    expect(dependsOn('worker')).toEqual({
      postgresql: 'service_healthy',
      'temporal-setup': 'service_completed_successfully',
    });
  });

  it('gives the worker every variable it reads', () => {
    for (const key of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_TASK_QUEUE', 'LEDGER_SHARD_URLS', 'LEDGER_SLOT_MAP']) {
      expect(workerEnv[key], key).toBeTruthy();
    }
    expect(workerEnv.TEMPORAL_ADDRESS).toBe('temporal:7233');
    for (const u of shardUrls) {
      expect(u.protocol).toBe('postgres:');
      expect(u.hostname).toBe('postgresql');
    }
  });

  it('creates every database the stack uses in deploy/postgres/init.sql', () => {
    const created = new Set(
      [...read('deploy/postgres/init.sql').matchAll(/^\s*CREATE\s+DATABASE\s+"?(\w+)"?/gim)].map((m) => m[1]),
    );
    // temporal + temporal_visibility too, because auto-setup runs with SKIP_DB_CREATE.
    const needed = [...shardUrls.map((u) => u.pathname.slice(1)), 'temporal', 'temporal_visibility'];
    expect(shardUrls.length).toBeGreaterThanOrEqual(2);
    for (const db of needed) expect(created, `database ${db}`).toContain(db);
    expect(envOf('temporal').SKIP_DB_CREATE).toBe('true');
    expect(svc('postgresql').volumes.join('\n')).toContain('./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/');
  });

  it('maps hash slots 0..16383 to existing shards, each slot exactly once', () => {
    const owner = new Array<number>(16384).fill(-1);
    for (const part of workerEnv.LEDGER_SLOT_MAP!.split(',')) {
      const m = /^\s*(\d+)-(\d+):(\d+)\s*$/.exec(part);
      expect(m, `slot range "${part}"`).not.toBeNull();
      const [lo, hi, shard] = m!.slice(1).map(Number) as [number, number, number];
      expect(lo).toBeLessThanOrEqual(hi);
      expect(hi).toBeLessThan(16384);
      expect(shard, `shard ${shard} has a URL`).toBeLessThan(shardUrls.length);
      for (let s = lo; s <= hi; s++) {
        expect(owner[s], `slot ${s} assigned twice`).toBe(-1);
        owner[s] = shard;
      }
    }
    expect(owner.indexOf(-1), 'first unassigned slot').toBe(-1);
  });

  it('temporal-setup registers exactly the workflow search attributes', () => {
    const setup = svc('temporal-setup');
    const script = [setup.entrypoint, setup.command].flat().filter(Boolean).join('\n');
    // `search-attribute create ... --name N --type T` lines, or calls of the
    // script's `create --name N --type T` wrapper around it.
    const created = [...script.matchAll(/search-attribute create\b[^\n]*|^\s*create\s+--name[^\n]*/gm)]
      .flatMap((line) => [...line[0].matchAll(/--name[=\s]+(\w+)\s+--type[=\s]+(\w+)/g)])
      .map((m) => `${m[1]}:${m[2]}`);
    expect(created.sort()).toEqual(
      ['Amount:Int', 'Currency:Keyword', 'FromAccount:Keyword', 'ToAccount:Keyword', 'TransferStatus:Keyword'],
    );
    expect(envOf('temporal-setup').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('describes the same Temporal topology as `transfer up --profile server`', () => {
    // The same server version, history shards and dynamic config; its own UI and a worker.
    expect(interpolate(svc('temporal').image)).toBe(`temporalio/auto-setup:${TEMPORAL_SERVER_VERSION.slice(1)}`);
    const env = envOf('temporal');
    expect(env.DB).toBe('postgres12');
    expect(Number(env.NUM_HISTORY_SHARDS)).toBe(DEFAULT_HISTORY_SHARDS);
    const mount = (svc('temporal').volumes as string[]).map(interpolate).find((v) => v.startsWith('./deploy/temporal/dynamicconfig.yaml:'));
    expect(mount?.split(':')[1]).toBe(env.DYNAMIC_CONFIG_FILE_PATH);
    expect(parse(read('deploy/temporal/dynamicconfig.yaml'))).toEqual(parse(dynamicConfigYaml()));
    expect(dependsOn('temporal-ui')).toHaveProperty('temporal');
    expect(envOf('temporal-ui').TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(envOf('worker').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  // Runs only where the docker client has the compose plugin; the client
  // validates and interpolates the file without talking to an engine.
  const hasCompose = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasCompose)('is accepted by `docker compose config`', () => {
    const r = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '--quiet'], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('Dockerfile', () => {
  const lines = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ') // join continuation lines
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const final = lines.slice(lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true));

  it('runs `node bin/transfer.js worker` as the non-root node user on a pinned base', () => {
    const cmd = final.filter((l) => /^CMD\s/i.test(l)).pop();
    expect(cmd).toBeDefined();
    expect(JSON.parse(cmd!.replace(/^CMD\s+/i, ''))).toEqual(['node', 'bin/transfer.js', 'worker']);
    expect(final.filter((l) => /^USER\s/i.test(l)).pop()).toBe('USER node');
    expect(final.some((l) => /^EXPOSE\s+.*\b9464\b/i.test(l))).toBe(true);
    for (const from of lines.filter((l) => /^FROM\s/i.test(l))) {
      expect(from).toMatch(/^FROM\s+node:20\.\d+(\.\d+)?-bookworm-slim(\s|$)/i);
    }
  });

  it('copies the application paths from the build context', () => {
    const expected = ['package.json', 'package-lock.json', 'bin', 'src', 'workflows', 'activities', 'migrations', 'tsconfig.json'];
    // Sources of COPY instructions that read the build context (not --from=stage).
    const copied = new Set(
      lines
        .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
        .flatMap((l) => l.split(/\s+/).slice(1).filter((t) => !t.startsWith('--')).slice(0, -1))
        .map((p) => p.replace(/^\.\//, '').replace(/\/$/, '')),
    );
    for (const p of expected) expect(copied, `COPY ${p}`).toContain(p);
    for (const p of copied) {
      // Paths another change is still adding may be absent; anything else must exist.
      if (!existsSync(`${root}${p}`)) expect(expected.filter((e) => !e.startsWith('package')), `COPY ${p} (missing)`).toContain(p);
    }
    expect(existsSync(`${root}package.json`)).toBe(true);
    expect(existsSync(`${root}package-lock.json`)).toBe(true); // npm ci needs it
    // .dockerignore must not hide anything we copy.
    const ignored = read('.dockerignore').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of copied) expect(ignored, `.dockerignore hides ${p}`).not.toContain(p);
    expect(ignored).toContain('node_modules');
  });
});
