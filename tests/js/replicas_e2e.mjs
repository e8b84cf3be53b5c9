// replicas_e2e.mjs -- three imagegate replicas sharing one PostgreSQL and one
// Redis (real servers on loopback, tests/servers.sh), with the OpenAI
// emulator as the vendor. A replica is killed with SIGKILL mid-load: every
// accepted job still ends, and no job runs twice at the vendor. 64
// concurrent requests across the replicas never pass a tenant's ceiling.
// Images per minute hold cluster-wide. PostgreSQL and Redis restarted under
// load: requests fail with a retryable error while they are down, and the
// replicas recover without a restart.
// Usage: node replicas_e2e.mjs IMAGEGATE_BINARY SOURCE_DIR
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin, src] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'ig-replicas-'));
chmodSync(dir, 0o755);   // PostgreSQL runs as its own user and must reach its folder
const servers = (verb, d) => execFileSync('bash', [join(src, 'tests/servers.sh'), verb, d]).toString().trim();
const children = [];
let passed = 0, failed = 0;
const check = (name, cond, detail) => {
  if (cond) passed++; else { failed++; console.log(`FAIL ${name}: ${detail ?? ''}`); }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(args, env = {}) {
  const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const m = out.match(/listening on http:\/\/(\S+)/);
      if (m) { clearInterval(t); resolve({ proc: p, addr: m[1], log: () => out }); }
    }, 50);
    p.on('exit', (code) => { clearInterval(t); reject(new Error(`exited ${code}: ${out}`)); });
  });
}
const json = async (res) => { const t = await res.text(); try { return { status: res.status, ...JSON.parse(t) }; } catch { return { status: res.status, raw: t }; } };
const post = (url, body, headers = {}) => fetch(url, {
  method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
}).then(json);
const admin = (emu, what, body) => post(`http://${emu}/_emulator/${what}`, body ?? {});

const pgdir = join(dir, 'pg'), redisdir = join(dir, 'redis');
try {
  const pg = servers('pg-start', pgdir);
  const redis = servers('redis-start', redisdir);
  const sql = (q) => execFileSync('psql', [pg, '-tAc', q]).toString().trim();
  const emu = await start(['emulate', 'openai', '--listen', '127.0.0.1:0']);
  const emu2 = await start(['emulate', 'openai', '--listen', '127.0.0.1:0']);
  const backend = (name, addr, usd, extra = '') => `
  - name: ${name}
    adapter: openai
    endpoint: http://${addr}/v1
    credential: env:OPENAI_API_KEY
    model: gpt-image-1
    contract:
      classes: [generate]
      sizes: [1024x1024]
      grammar: natural-language
      tier: fingerprint
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-image, usd: ${usd}}
      limits: {total_timeout_ms: 60000${extra}}`;
  const config = (i) => `
server: {listen: 127.0.0.1:0, data_dir: ${dir}/r${i}, log_level: warn}
store: {url: "${pg}", blob_dir: ${dir}/blobs, redis: "${redis}"}
limits: {job_timeout_ms: 120000}
backends:${backend('main', emu.addr, 0.05)}${backend('limited', emu2.addr, 0.001, ', ipm: 10')}
tenants:
  - name: default
    budget: {daily_usd: 1.00}
ladders:
  - {name: gen, class: generate, rungs: [{backend: main}]}
`;
  const env = { OPENAI_API_KEY: 'sk-test' };
  const replicas = [];
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(dir, `r${i}.yaml`), config(i));
    replicas.push(await start(['serve', '--config', join(dir, `r${i}.yaml`)], env));
  }
  const url = (i, path) => `http://${replicas[i].addr}${path}`;

  // 64 concurrent requests across the replicas against a $1.00 ceiling at $0.05.
  const burst = await Promise.all(Array.from({ length: 64 }, (_, i) =>
    post(url(i % 3, '/v1/images/generations'), { prompt: `budget ${i}`, model: 'main', size: '1024x1024' })));
  const ok = burst.filter((r) => r.data).length;
  const committed = Number(sql("SELECT COALESCE(SUM(usd),0) FROM ledger WHERE tenant='default' AND state IN ('committed','reserved')"));
  check('ceiling holds across replicas', committed <= 1.0 + 1e-9 && ok <= 20, `ok ${ok}, ledger ${committed}`);
  check('some requests served', ok >= 15, `${ok}`);

  // Images per minute across replicas: 30 requests against 10 a minute.
  sql("DELETE FROM ledger");   // a fresh budget: only the rate limit may hold these back
  await admin(emu2.addr, 'reset');
  for (let i = 0; i < 30; i++)
    post(url(i % 3, '/v1/jobs'), { class: 'generate', prompt: `ipm ${i}`, backend: 'limited' }).catch(() => {});
  await sleep(3000);
  const seen = (await admin(emu2.addr, 'stats')).requests;
  check('images per minute hold cluster-wide', seen >= 8 && seen <= 11, `${seen} reached the vendor`);

  // kill -9 one replica mid-load.
  sql("DELETE FROM ledger");   // fresh budget for this part
  await admin(emu.addr, 'reset');
  await admin(emu.addr, 'faults', { faults: Array.from({ length: 30 }, () => ({ kind: 'latency', delay_ms: 400 })) });
  const jobs = [];
  for (let i = 0; i < 18; i++)
    jobs.push(await post(url(i % 3, '/v1/jobs'), { class: 'generate', prompt: `crash ${i}`, size: '1024x1024' }));
  check('all accepted', jobs.every((j) => j.status === 202 || j.status === 200), JSON.stringify(jobs.map((j) => j.status)));
  await sleep(250);
  replicas[0].proc.kill('SIGKILL');
  const ends = await Promise.all(jobs.map((j) =>
    fetch(url(1 + (j.id.length % 2), `/v1/jobs/${j.id}`), { headers: { Prefer: 'wait=100' } }).then(json)));
  check('every accepted job ends', ends.every((e) => e.state === 'succeeded' || e.state === 'failed'),
        JSON.stringify(ends.map((e) => e.state)));
  const bad = ends.filter((e) => e.state === 'failed' && e.error.code !== 'lost_in_crash');
  check('only jobs caught at the vendor fail', bad.length === 0,
        JSON.stringify(bad.map((e) => e.attempts)).slice(0, 1500));
  await sleep(600);
  const subs = (await admin(emu.addr, 'stats')).submits;
  const twice = Object.entries(subs).filter(([, n]) => n > 1);
  check('no job ran twice at the vendor', twice.length === 0, JSON.stringify(twice));

  // PostgreSQL down: a retryable 503; back up: served again, no restart.
  sql("DELETE FROM ledger");
  servers('pg-pause', pgdir);
  const down = await post(url(1, '/v1/jobs'), { class: 'generate', prompt: 'while down' });
  check('store down is a retryable 503', down.status === 503 && down.error &&
        ['store_unavailable', 'store_error'].includes(down.error.code), JSON.stringify(down));
  servers('pg-resume', pgdir);
  await sleep(300);
  const back = await post(url(1, '/v1/jobs'), { class: 'generate', prompt: 'after pg is back' }, { Prefer: 'wait=20' });
  check('recovers after PostgreSQL restarts', back.state === 'succeeded', JSON.stringify(back).slice(0, 300));

  // Redis down: admission waits and retries; back up: the job goes through.
  servers('redis-pause', redisdir);
  const during = post(url(2, '/v1/jobs'), { class: 'generate', prompt: 'while redis is down' }, { Prefer: 'wait=20' });
  await sleep(1200);
  servers('redis-resume', redisdir);
  const after = await during;
  check('recovers after Redis restarts', after.state === 'succeeded', JSON.stringify(after).slice(0, 300));
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.stack}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  try { servers('pg-stop', pgdir); } catch {}
  try { servers('redis-stop', redisdir); } catch {}
  rmSync(dir, { recursive: true, force: true });
}
console.log(`replicas_e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
