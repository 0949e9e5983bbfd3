// Tests for the skiff CloudFront Function router. Run: node --test router/
// The routing cases are router/cases.json (the contract is router/SPEC.md): one test per
// case. The tests here are structural only, and the harness that runs the cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SRC_PATH = fileURLToPath(new URL('./router.js', import.meta.url));
const FILE = readFileSync(SRC_PATH, 'utf8');
// What skiff deploys (src/router.rs `code`): the file without its whole-line comments.
const SRC = FILE.split('\n').filter((l) => !l.trim().startsWith('//')).join('\n');
const CASES = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url), 'utf8')).cases;
const IMPORT = "import cf from 'cloudfront';";
const PLACEHOLDER = '__SKIFF_PREVIEWS__';
const DEFAULT_PREVIEWS = 'preview.example.com';
const COOKIE_ATTRIBUTES = 'Path=/; Max-Age=2592000; Secure; SameSite=Lax';
const STATUS_TEXT = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  404: 'Not Found',
};

const CASE_FIELDS = ['name', 'previews', 'kvs', 'pages', 'request', 'expect'];
const REQUEST_FIELDS = ['event', 'host', 'uri', 'query', 'cookies', 'headers', 'random'];
const EXPECT_FIELDS = ['uri', 'status', 'location', 'headers', 'no_headers', 'request_headers', 'cookies'];
// Which expect fields make sense for which answer.
const FORWARD_FIELDS = ['uri', 'request_headers'];
const RESPOND_FIELDS = ['status', 'location', 'headers', 'no_headers'];
const RESPONSE_FIELDS = ['headers', 'no_headers', 'cookies'];

// Cases that must answer without reading the KVS at all (SPEC steps 1 and 2).
const NO_READ = /^(unsafe path|invalid preview slug)\b/;

// ---- the harness -----------------------------------------------------------

// Evaluate router.js the way CloudFront would after skiff templated it. `kvs` is the
// store (a missing key throws, as in CloudFront); `random` is what Math.random returns
// (undefined: the case must not draw). Returns the handler and a log of the KVS reads.
function load(kvs, previews, random) {
  const log = { keys: [], inflight: 0, maxInflight: 0, draws: 0 };
  const cf = {
    kvs: () => ({
      get: async (k) => {
        log.keys.push(k);
        log.inflight++;
        log.maxInflight = Math.max(log.maxInflight, log.inflight);
        await new Promise((r) => setImmediate(r));
        log.inflight--;
        if (!Object.prototype.hasOwnProperty.call(kvs, k)) throw new Error('key not found');
        return kvs[k];
      },
    }),
  };
  const math = Object.create(Math, {
    random: {
      value: () => {
        log.draws++;
        if (random === undefined) throw new Error('the router drew a random number, and the case gives no `random`');
        return random;
      },
    },
  });
  const src = SRC.replace(IMPORT, '').split(PLACEHOLDER).join(previews);
  const handler = new Function('cf', 'Math', "'use strict';\n" + src + '\nreturn handler;')(cf, math);
  return { handler, log };
}

// FNV-1a 32 over UTF-16 code units, written differently from router.js (Math.imul).
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

// The `i:` keys of a case's `pages`: {id: {n, paths: {path: type}}}.
function indexKeys(pages = {}) {
  const out = {};
  for (const [id, { n, paths }] of Object.entries(pages)) {
    for (const [path, type] of Object.entries(paths)) {
      const h = fnv1a(path);
      const key = `i:${id}:${h % n}`;
      out[key] = (out[key] || '') + type + h.toString(16).padStart(8, '0');
    }
  }
  return out;
}

// CloudFront's parsed querystring: {name: {value}}, repeated names with multiValue.
function querystring(query = '') {
  const q = {};
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const i = pair.indexOf('=');
    const name = i === -1 ? pair : pair.slice(0, i);
    const value = i === -1 ? '' : pair.slice(i + 1);
    if (!Object.prototype.hasOwnProperty.call(q, name)) {
      q[name] = { value };
    } else {
      if (!q[name].multiValue) q[name].multiValue = [{ value: q[name].value }];
      q[name].multiValue.push({ value });
    }
  }
  return q;
}

function eventOf(c) {
  const r = c.request;
  const headers = {};
  if (r.host !== undefined) headers.host = { value: r.host };
  for (const [k, v] of Object.entries(r.headers || {})) headers[k] = { value: v };
  const cookies = {};
  for (const [k, v] of Object.entries(r.cookies || {})) cookies[k] = { value: v };
  const eventType = r.event || 'viewer-request';
  const e = {
    version: '1.0',
    context: { eventType, distributionId: 'E1' },
    viewer: { ip: '1.2.3.4' },
    request: { method: 'GET', uri: r.uri, querystring: querystring(r.query), headers, cookies },
  };
  if (eventType === 'viewer-response') {
    e.response = {
      statusCode: 200,
      statusDescription: 'OK',
      headers: { 'content-type': { value: 'text/html' } },
      cookies: {},
    };
  }
  return e;
}

// The property behind "skiff's state is never reachable": whatever goes on to the bucket
// stays inside one live deploy, without a '.' or '..' segment.
function assertInsideADeploy(uri) {
  const m = /^\/_deploys\/(production|preview-[a-z0-9-]+)\/[A-Za-z0-9][A-Za-z0-9_-]{0,99}(\/.*)$/.exec(uri);
  assert.ok(m, `outside the deploys: ${uri}`);
  for (const seg of m[2].split('/')) {
    const s = decodeURIComponent(seg);
    assert.ok(!s.split('/').some((x) => x === '.' || x === '..') && !s.includes('\\'), `climbs out: ${uri}`);
  }
}

async function runCase(c) {
  const kvs = { ...c.kvs, ...indexKeys(c.pages) };
  const previews = c.previews === undefined ? DEFAULT_PREVIEWS : c.previews;
  const { handler, log } = load(kvs, previews, c.request.random);
  const event = eventOf(c);
  const sent = { ...event.request.headers };
  const out = await handler(event);
  const x = c.expect;
  const why = `got ${JSON.stringify(out)}`;

  assert.ok(log.maxInflight <= 1, 'KVS reads must be sequential');
  if (NO_READ.test(c.name)) assert.deepEqual(log.keys, [], 'no KVS read');

  if (c.request.event === 'viewer-response') {
    assert.equal(out, event.response, 'the response itself');
    assert.equal(out.statusCode, 200);
    assert.deepEqual(out.headers['content-type'], { value: 'text/html' }, 'existing headers are kept');
    assert.deepEqual(log.keys, [], 'viewer-response reads no KVS key');
    for (const [k, v] of Object.entries(x.headers || {})) assert.deepEqual(out.headers[k], { value: v }, `header ${k}`);
    for (const k of x.no_headers || []) assert.equal(out.headers[k], undefined, `header ${k}`);
    const want = x.cookies || {};
    assert.deepEqual(Object.keys(out.cookies || {}).sort(), Object.keys(want).sort(), `cookies: ${why}`);
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(out.cookies[k], { value: v, attributes: COOKIE_ATTRIBUTES }, `cookie ${k}`);
    }
    return;
  }

  if (x.uri !== undefined) {
    assert.equal(out.statusCode, undefined, `expected a request, ${why}`);
    assert.equal(out, event.request, 'the request itself');
    assert.equal(out.uri, x.uri);
    assertInsideADeploy(out.uri);
    // The headers the router added: exactly request_headers (none when absent).
    const added = {};
    for (const [k, v] of Object.entries(out.headers)) {
      if (!sent[k] || sent[k].value !== v.value) added[k] = v.value;
    }
    assert.deepEqual(added, x.request_headers || {}, 'added request headers');
    return;
  }

  assert.equal(out.statusCode, x.status, why);
  assert.equal(out.statusDescription, STATUS_TEXT[x.status], why);
  if (x.location !== undefined) assert.deepEqual(out.headers.location, { value: x.location }, why);
  for (const [k, v] of Object.entries(x.headers || {})) assert.deepEqual(out.headers[k], { value: v }, `header ${k}: ${why}`);
  for (const k of x.no_headers || []) assert.equal(out.headers[k], undefined, `header ${k}: ${why}`);
  if (x.status === 404) {
    assert.equal(out.body, 'Not Found');
    assert.deepEqual(out.headers['content-type'], { value: 'text/plain; charset=utf-8' });
    assert.deepEqual(out.headers['cache-control'], { value: 'no-store' });
  } else {
    assert.equal(out.body, undefined, 'a redirect has no body');
  }
}

// ---- source constraints -------------------------------------------------

test('source: deployed size under 10 KB, also templated with the longest preview domain', () => {
  assert.ok(statSync(SRC_PATH).size < 12288, `size ${statSync(SRC_PATH).size}`);
  assert.ok(Buffer.byteLength(SRC) < 10240, `deployed size ${Buffer.byteLength(SRC)}`);
  const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`; // 253
  const templated = Buffer.byteLength(SRC.split(PLACEHOLDER).join(longest));
  assert.ok(templated < 10240, `templated size ${templated}`);
});

test('source: import line first, one exact template line, one placeholder', () => {
  assert.equal(SRC.split('\n')[0], IMPORT);
  assert.ok(SRC.split('\n').includes(`const PREVIEWS = '${PLACEHOLDER}';`));
  assert.equal(SRC.split(PLACEHOLDER).length - 1, 1);
  assert.match(SRC, /const kvs = cf\.kvs\(\);/);
  assert.match(SRC, /async function handler\(event\)/);
  assert.doesNotMatch(SRC, /\bexport\b/);
});

test('source: no constructs outside cloudfront-js-2.0', () => {
  assert.doesNotMatch(SRC, /\bfor\s*\([^)]*\bof\b/, 'for...of');
  assert.doesNotMatch(SRC, /Promise\.(all|allSettled|any|race)/, 'promise combinators');
  assert.doesNotMatch(SRC, /\?\./, 'optional chaining');
  assert.doesNotMatch(SRC, /\?\?/, 'nullish coalescing');
  assert.doesNotMatch(SRC, /Math\.imul/, 'Math.imul');
  assert.doesNotMatch(SRC, /\bBigInt\b|\d+n\b/, 'BigInt');
  assert.doesNotMatch(SRC, /\(\?<[=!]/, 'regex lookbehind');
  assert.doesNotMatch(SRC, /\.includes\(|\.padStart\(|\.padEnd\(|Object\.(entries|values)/);
  assert.doesNotMatch(SRC, /\bclass\b|\beval\b|\brequire\(/);
});

// ---- the table itself -------------------------------------------------------

test('cases.json: known fields only, one answer per case, unique names', () => {
  assert.ok(CASES.length >= 100, `${CASES.length} cases`);
  const names = new Set();
  for (const c of CASES) {
    const where = JSON.stringify(c.name);
    assert.equal(typeof c.name, 'string', where);
    assert.ok(!names.has(c.name), `duplicate name ${where}`);
    names.add(c.name);
    for (const k of Object.keys(c)) assert.ok(CASE_FIELDS.includes(k), `${where}: unknown field ${k}`);
    for (const k of Object.keys(c.request)) assert.ok(REQUEST_FIELDS.includes(k), `${where}: unknown request field ${k}`);
    for (const k of Object.keys(c.expect)) assert.ok(EXPECT_FIELDS.includes(k), `${where}: unknown expect field ${k}`);
    assert.equal(typeof c.kvs, 'object', `${where}: kvs`);
    for (const v of Object.values(c.kvs)) assert.equal(typeof v, 'string', `${where}: KVS values are strings`);
    assert.equal(typeof c.request.uri, 'string', `${where}: request.uri`);
    const event = c.request.event || 'viewer-request';
    assert.ok(['viewer-request', 'viewer-response'].includes(event), `${where}: event ${event}`);
    const fields = Object.keys(c.expect);
    if (event === 'viewer-response') {
      assert.ok(fields.every((k) => RESPONSE_FIELDS.includes(k)), `${where}: expect of a viewer-response`);
    } else if ('uri' in c.expect) {
      assert.ok(fields.every((k) => FORWARD_FIELDS.includes(k)), `${where}: expect of a request that goes on`);
    } else {
      assert.equal(typeof c.expect.status, 'number', `${where}: expect needs uri or status`);
      assert.ok(fields.every((k) => RESPOND_FIELDS.includes(k)), `${where}: expect of a generated answer`);
    }
    // An index built from `pages` has the n of the deploy's route table.
    for (const [id, { n, paths }] of Object.entries(c.pages || {})) {
      assert.ok(Number.isInteger(n) && n > 0, `${where}: pages n`);
      for (const t of Object.values(paths)) assert.ok(['c', 'd', 'f'].includes(t), `${where}: page type ${t}`);
      assert.equal(JSON.parse(c.kvs[`routes:${id}`]).n, n, `${where}: routes:${id} n`);
    }
  }
});

test("the harness's FNV-1a matches the published vectors", () => {
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
  assert.equal(fnv1a('/'), 0x2a0c975e);
  assert.equal(fnv1a('/café'), 0xb01ac8af);
  assert.equal(fnv1a('/about'), 0x00e27df7);
  assert.equal(fnv1a('/🙂'), 0x2e5cc601);
});

// ---- the routing cases ----------------------------------------------------------

for (const c of CASES) {
  test(c.name, () => runCase(c));
}
