// SPDX-License-Identifier: MIT
// cutout_peer.mjs -- the peer side of bench/cutout.sh: runs
// @imgly/background-removal-node (medium model, its defaults otherwise) on
// one photo RUNS times in one process, each run end to end like ours: read
// the file, remove the background, write the PNG. One JSON line per run.
// Usage: node cutout_peer.mjs PEER_DIR IN OUT.png RUNS
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';

const [peerDir, input, output, runsArg] = process.argv.slice(2);
const require = createRequire(`${peerDir}/package.json`);
const { removeBackground } = require('@imgly/background-removal-node');
const publicPath = `file://${peerDir}/node_modules/@imgly/background-removal-node/dist/`;
const type = extname(input) === '.jpg' ? 'image/jpeg' : 'image/png';

for (let run = 1; run <= Number(runsArg || 1); run++) {
  const t0 = process.hrtime.bigint();
  const blob = new Blob([readFileSync(input)], { type });
  const out = await removeBackground(blob, { publicPath, model: 'medium',
                                            output: { format: 'image/png' } });
  writeFileSync(output, Buffer.from(await out.arrayBuffer()));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ run, total_ms: Math.round(ms * 10) / 10 }));
}
