// gateway_e2e.mjs -- imagegate serve end to end, against vendor emulators in
// their own processes: fallback on 500, on 429 and on an output that fails
// the gate; Retry-After; a budget ceiling under 32 concurrent requests; an
// idempotent retry; kill -9 mid-job and a restart that finishes the job
// without running or charging it twice.
// Usage: node gateway_e2e.mjs IMAGEGATE_BINARY
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'ig-e2e-'));
const children = [];
let passed = 0, failed = 0;
const check = (name, cond, detail) => {
  if (cond) passed++; else { failed++; console.log(`FAIL ${name}: ${detail ?? ''}`); }
};

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
    p.on('exit', (code) => { clearInterval(t); reject(new Error(`${args[0]} exited ${code}: ${out}`)); });
  });
}

const json = async (res) => { const t = await res.text(); try { return JSON.parse(t); } catch { return { raw: t }; } };
const post = (url, body, headers = {}) => fetch(url, {
  method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
});
const admin = (emu, what, body) => post(`http://${emu}/_emulator/${what}`, body ?? {}).then(json);

try {
  const a = await start(['emulate', 'openai', '--listen', '127.0.0.1:0']);
  const b = await start(['emulate', 'openai', '--listen', '127.0.0.1:0', '--fingerprint', 'fp_b']);
  const flux = await start(['emulate', 'bfl', '--listen', '127.0.0.1:0']);
  const backend = (name, emu, usd) => `
  - name: ${name}
    adapter: openai
    endpoint: http://${emu}/v1
    credential: env:OPENAI_API_KEY
    model: gpt-image-1
    contract:
      classes: [generate]
      sizes: [1024x1024]
      grammar: natural-language
      tier: fingerprint
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-image, usd: ${usd}}
      limits: {total_timeout_ms: 20000}`;
  const config = `
server: {listen: 127.0.0.1:0, data_dir: ${dir}/data, log_level: warn}
limits: {job_timeout_ms: 30000}
backends:${backend('first', a.addr, 0.05)}${backend('second', b.addr, 0.02)}
  - name: flux
    adapter: bfl
    endpoint: http://${flux.addr}
    credential: env:OPENAI_API_KEY
    model: flux-pro-1.1
    contract:
      classes: [generate]
      min_side: 256
      max_side: 1440
      size_multiple: 32
      supports: [seed]
      grammar: natural-language
      tier: perceptual
      license: {id: proprietary, flags: [commercial]}
      price: {model: per-credit, usd: 0.01, credits_per_image: 4}
tenants:
  - name: default
    budget: {daily_usd: 1.00}
ladders:
  - name: gen
    class: generate
    rungs:
      - {backend: first, retries: 1}
      - {backend: second}
`;
  writeFileSync(join(dir, 'gw.yaml'), config);
  const env = { OPENAI_API_KEY: 'sk-test' };
  let gw = await start(['serve', '--config', join(dir, 'gw.yaml')], env);
  const job = (body, headers) => post(`http://${gw.addr}/v1/jobs`, { class: 'generate', size: '1024x1024', ...body },
                                      { Prefer: 'wait=20', ...headers }).then(json);
  const backendOf = (j) => j.provenance && j.provenance.backend;

  // Fallback on 500: both tries on the first rung fail, the second rung serves.
  await admin(a.addr, 'faults', { faults: [{ kind: 'server_error' }, { kind: 'server_error' }] });
  let j = await job({ prompt: 'fallback on 500' });
  check('500 falls back', j.state === 'succeeded' && backendOf(j) === 'second', JSON.stringify(j).slice(0, 400));
  check('500 attempts recorded', j.attempts.filter((x) => x.outcome === 'upstream_error').length === 2,
        JSON.stringify(j.attempts));

  // 429 with Retry-After: retried on the same rung after the vendor's delay.
  await admin(a.addr, 'faults', { faults: [{ kind: 'rate_limit', retry_after: 1 }] });
  const t0 = Date.now();
  j = await job({ prompt: 'retry after 429' });
  check('429 retried on the same rung', j.state === 'succeeded' && backendOf(j) === 'first',
        JSON.stringify(j.attempts));
  check('Retry-After honoured', Date.now() - t0 >= 1000, `${Date.now() - t0} ms`);

  // An output that fails the gate (a corrupt image) moves to the next rung.
  await admin(a.addr, 'faults', { faults: [{ kind: 'corrupt_image' }, { kind: 'corrupt_image' }] });
  j = await job({ prompt: 'corrupt output' });
  check('bad output falls back', j.state === 'succeeded' && backendOf(j) === 'second',
        JSON.stringify(j.attempts));

  // A prompt spec is rendered for the rung's grammar; what the rung cannot
  // take (OpenAI: a seed) is named in the provenance's notes.
  await admin(a.addr, 'reset');
  j = await job({ spec: { subject: 'a red fox in fresh snow', style: 'watercolor', must_avoid: ['text'], seed: 5 }, backend: 'first' });
  const notes = JSON.stringify((j.provenance && j.provenance.notes) || []);
  check('spec rendered', j.state === 'succeeded' && /fox/.test(j.provenance.prompt) && /watercolor/i.test(j.provenance.prompt),
        JSON.stringify(j).slice(0, 600));
  check('spec notes', /seed/i.test(notes), notes);

  // Idempotency: the same key twice runs once.
  const before = (await admin(a.addr, 'stats')).requests;
  const k1 = await job({ prompt: 'once only' }, { 'Idempotency-Key': 'k-1' });
  const k2 = await job({ prompt: 'once only' }, { 'Idempotency-Key': 'k-1' });
  check('idempotent id', k1.id === k2.id, `${k1.id} ${k2.id}`);
  check('idempotent single run', (await admin(a.addr, 'stats')).requests - before === 1);

  // kill -9 with one job at the vendor and one waiting out a Retry-After.
  // After the restart the waiting one runs; the one at the vendor is not sent
  // again (the vendor may have run it): no job runs twice on the vendor.
  await admin(a.addr, 'reset');
  await admin(a.addr, 'faults', { faults: [{ kind: 'latency', delay_ms: 2500 }, { kind: 'rate_limit', retry_after: 3 }] });
  const submit = (prompt) => post(`http://${gw.addr}/v1/jobs`, { class: 'generate', prompt, size: '1024x1024', backend: 'first' }).then(json);
  const inFlight = await submit('at the vendor during the crash');
  await new Promise((r) => setTimeout(r, 150));
  const waiting = await submit('waiting out a retry-after during the crash');
  await new Promise((r) => setTimeout(r, 600));
  gw.proc.kill('SIGKILL');
  await new Promise((r) => gw.proc.on('exit', r));
  gw = await start(['serve', '--config', join(dir, 'gw.yaml')], env);
  const get = (id) => fetch(`http://${gw.addr}/v1/jobs/${id}`, { headers: { Prefer: 'wait=20' } }).then(json);
  const lost = await get(inFlight.id), done = await get(waiting.id);
  check('in-flight job ends, not resent', lost.state === 'failed' && lost.error && lost.error.code === 'lost_in_crash',
        JSON.stringify(lost).slice(0, 400));
  check('waiting job finishes after restart', done.state === 'succeeded', JSON.stringify(done).slice(0, 400));
  await new Promise((r) => setTimeout(r, 2500));   // let the emulator finish the call the crash orphaned
  const subs = (await admin(a.addr, 'stats')).submits;
  const count = (p) => subs[`/v1/images/generations|${p}`] || 0;
  check('no job ran twice at the vendor', count('at the vendor during the crash') <= 1 &&
        count('waiting out a retry-after during the crash') === 1, JSON.stringify(subs));

  // kill -9 while an async BFL task is pending: after the restart the task is
  // re-polled by its saved id and finishes; BFL saw one submit.
  const fj = await post(`http://${gw.addr}/v1/jobs`, { class: 'generate', prompt: 'flux across a crash', size: '1024x768', seed: 7, backend: 'flux' }).then(json);
  await new Promise((r) => setTimeout(r, 500));
  gw.proc.kill('SIGKILL');
  await new Promise((r) => gw.proc.on('exit', r));
  gw = await start(['serve', '--config', join(dir, 'gw.yaml')], env);
  const fdone = await fetch(`http://${gw.addr}/v1/jobs/${fj.id}`, { headers: { Prefer: 'wait=20' } }).then(json);
  check('async job re-polled after restart', fdone.state === 'succeeded' && fdone.provenance &&
        fdone.provenance.seed === 7, JSON.stringify(fdone).slice(0, 500));
  const fsubs = (await admin(flux.addr, 'stats')).submits;
  const fcount = Object.entries(fsubs).filter(([k]) => k.includes('flux across a crash'))
    .reduce((n, [, v]) => n + v, 0);
  check('async job submitted once', fcount === 1, JSON.stringify(fsubs));
  // Budget: $1.00 a day; 32 concurrent requests at $0.05 (first rung) cannot pass it.
  const many = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    post(`http://${gw.addr}/v1/images/generations`, { prompt: `budget ${i}`, model: 'first' }).then(json)));
  const ok = many.filter((r) => r.data).length;
  const spent = many.filter((r) => r.data).reduce((s, r) => s + (r.imagegate.cost_usd || 0), 0);
  check('budget: some refused', ok < 32, `${ok} succeeded`);
  const refused = many.find((r) => r.error);
  check('budget: refusal names the ceiling', refused && JSON.stringify(refused).includes('ceiling'),
        JSON.stringify(refused).slice(0, 300));
  // what was spent before this burst, by the earlier jobs, counts too
  check('budget: ceiling held', spent <= 1.0 + 1e-9, `spent ${spent}`);

} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.message}`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(`gateway_e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
