// Run router/router.js as CloudFront would, over a KVS given on stdin, for one viewer
// request; print what it returns (JSON). Used by the integration tests to ask "what does
// the published router answer, given what skiff wrote to the store?".
// stdin: {"kvs": {...}, "previews": "", "host": "h", "uri": "/", "cookies": {"n": "v"}, "random": 0.5}
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const input = JSON.parse(readFileSync(0, 'utf8'));
const src = readFileSync(fileURLToPath(new URL('../../router/router.js', import.meta.url)), 'utf8')
  .replace("import cf from 'cloudfront';", '')
  .split('__SKIFF_PREVIEWS__')
  .join(input.previews || '');
const cf = {
  kvs: () => ({
    get: async (k) => {
      if (!Object.prototype.hasOwnProperty.call(input.kvs, k)) throw new Error('key not found');
      return input.kvs[k];
    },
  }),
};
Math.random = () => (input.random === undefined ? 0.5 : input.random);
const handler = new Function('cf', "'use strict';\n" + src + '\nreturn handler;')(cf);
const cookies = {};
for (const [k, v] of Object.entries(input.cookies || {})) cookies[k] = { value: v };
const event = {
  version: '1.0',
  context: { eventType: 'viewer-request' },
  viewer: { ip: '127.0.0.1' },
  request: { method: 'GET', uri: input.uri, querystring: {}, headers: { host: { value: input.host } }, cookies },
};
const out = await handler(event);
process.stdout.write(JSON.stringify(out));
