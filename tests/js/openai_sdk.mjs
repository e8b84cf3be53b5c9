// openai_sdk.mjs -- the official openai npm client against an imagegate
// endpoint (the OpenAI emulator itself, or the gateway in front of it):
// generate and edit, read the answers the way the SDK reads them, and check
// that error answers surface as the SDK's own error classes.
// Usage: node openai_sdk.mjs BASE_URL [expect-gateway]
import OpenAI, { toFile } from 'openai';

const base = process.argv[2];
const gateway = process.argv[3] === 'expect-gateway';
const client = new OpenAI({ baseURL: base, apiKey: 'sk-test', maxRetries: 0 });
let passed = 0, failed = 0;
const check = (name, cond, detail) => {
  if (cond) passed++; else { failed++; console.log(`FAIL ${name}: ${detail ?? ''}`); }
};
const isPng = (b64) => Buffer.from(b64, 'base64').subarray(1, 4).toString() === 'PNG';

const gen = await client.images.generate({
  model: 'gpt-image-1', prompt: 'a lighthouse on a cliff at dusk', size: '1024x1024',
  quality: 'low', n: 1, background: 'opaque', moderation: 'low',
});
check('generate b64', gen.data.length === 1 && isPng(gen.data[0].b64_json));
check('generate created', typeof gen.created === 'number' && gen.created > 1700000000);
check('generate usage', gen.usage && gen.usage.output_tokens > 0, JSON.stringify(gen.usage));
if (gateway)
  check('generate provenance', gen.imagegate && gen.imagegate.backend, JSON.stringify(gen.imagegate));

const png = Buffer.from(gen.data[0].b64_json, 'base64');
const edit = await client.images.edit({
  model: 'gpt-image-1', prompt: 'add a red boat',
  image: await toFile(png, 'in.png', { type: 'image/png' }),
});
check('edit b64', edit.data.length === 1 && isPng(edit.data[0].b64_json));

try {
  await client.images.generate({ model: 'gpt-image-1', prompt: '' });
  check('empty prompt refused', false, 'no error');
} catch (e) {
  check('empty prompt refused', e instanceof OpenAI.BadRequestError && e.status === 400,
        `${e.constructor.name} ${e.status} ${e.message}`);
}
if (!gateway) {
  const bad = new OpenAI({ baseURL: base, apiKey: '', maxRetries: 0, defaultHeaders: { Authorization: '' } });
  try {
    await bad.images.generate({ model: 'gpt-image-1', prompt: 'x' });
    check('no key refused', false, 'no error');
  } catch (e) {
    check('no key refused', e.status === 401, `${e.status} ${e.message}`);
  }
}
console.log(`openai_sdk: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
