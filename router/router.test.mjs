// Tests for the skiff CloudFront Function router. Run: node --test router/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SRC_PATH = fileURLToPath(new URL('./router.js', import.meta.url));
const SRC = readFileSync(SRC_PATH, 'utf8');
const IMPORT = "import cf from 'cloudfront';";
const PLACEHOLDER = '__SKIFF_PREVIEWS__';
const PREVIEWS = 'preview.example.com';
// Deploy ids as skiff makes them (src/deploys.rs `new_id`): UTC time, then the short
// commit, or hex digits when there is no commit.
const PROD = '20261122T083000Z-3f2a9c1';
const FEAT = '20261122T091500Z-00abc1';

// Evaluate router.js the way CloudFront would after skiff templated it.
// Returns the handler plus a log of KVS keys read (and the max concurrency).
function load(data = {}, previews = PREVIEWS) {
  const log = { keys: [], inflight: 0, maxInflight: 0 };
  const stub = {
    kvs: () => ({
      get: async (k) => {
        log.keys.push(k);
        log.inflight++;
        log.maxInflight = Math.max(log.maxInflight, log.inflight);
        await new Promise((r) => setImmediate(r));
        log.inflight--;
        if (!Object.prototype.hasOwnProperty.call(data, k)) throw new Error('key not found');
        return data[k];
      },
    }),
  };
  const src = SRC.replace(IMPORT, '').split(PLACEHOLDER).join(previews);
  const handler = new Function('cf', "'use strict';\n" + src + '\nreturn handler;')(stub);
  return { handler, log };
}

const DEFAULT_KVS = { production: PROD, 'preview-feat-x': FEAT };

function reqEvent(uri, { host = 'example.com', querystring = {}, noHost = false } = {}) {
  return {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionId: 'E1' },
    viewer: { ip: '1.2.3.4' },
    request: {
      method: 'GET',
      uri,
      querystring,
      headers: noHost ? {} : { host: { value: host } },
      cookies: {},
    },
  };
}

function resEvent(host, uri = '/') {
  const e = reqEvent(uri, { host });
  e.context.eventType = 'viewer-response';
  e.response = { statusCode: 200, statusDescription: 'OK', headers: {} };
  return e;
}

async function run(uri, opts = {}, data = DEFAULT_KVS, previews = PREVIEWS) {
  const { handler, log } = load(data, previews);
  const out = await handler(reqEvent(uri, opts));
  assert.ok(log.maxInflight <= 1, 'KVS reads must be sequential');
  return out;
}

function rewritten(out) {
  assert.equal(out.statusCode, undefined, `expected a request, got ${JSON.stringify(out)}`);
  return out.uri;
}

function assertNotFound(out, noindex = false) {
  assert.equal(out.statusCode, 404, JSON.stringify(out));
  assert.equal(out.statusDescription, 'Not Found');
  assert.equal(out.body, 'Not Found');
  assert.deepEqual(out.headers['content-type'], { value: 'text/plain; charset=utf-8' });
  assert.deepEqual(out.headers['cache-control'], { value: 'no-store' });
  if (noindex) assert.deepEqual(out.headers['x-robots-tag'], { value: 'noindex' });
  else assert.equal(out.headers['x-robots-tag'], undefined);
}

function assertRedirect(out, status, location, noindex = false) {
  assert.equal(out.statusCode, status, JSON.stringify(out));
  assert.equal(typeof out.statusDescription, 'string');
  assert.ok(out.statusDescription.length > 0);
  assert.deepEqual(out.headers.location, { value: location });
  if (noindex) assert.deepEqual(out.headers['x-robots-tag'], { value: 'noindex' });
  else assert.equal(out.headers['x-robots-tag'], undefined);
}

// ---- source constraints -------------------------------------------------

test('source: size under 10 KB', () => {
  assert.ok(statSync(SRC_PATH).size < 10240, `size ${statSync(SRC_PATH).size}`);
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
  assert.doesNotMatch(SRC, /\?\.|\?\?/, 'optional chaining / nullish coalescing');
  assert.doesNotMatch(SRC, /\.includes\(|\.padStart\(|\.padEnd\(|Object\.(entries|values)/);
  assert.doesNotMatch(SRC, /\bclass\b|\beval\b|\brequire\(/);
});

// ---- production routing --------------------------------------------------

test('/ -> production index.html', async () => {
  assert.equal(rewritten(await run('/')), `/_deploys/production/${PROD}/index.html`);
});

test('/docs/ -> docs/index.html', async () => {
  assert.equal(rewritten(await run('/docs/')), `/_deploys/production/${PROD}/docs/index.html`);
});

test('/index.html and assets are rewritten as is', async () => {
  assert.equal(rewritten(await run('/index.html')), `/_deploys/production/${PROD}/index.html`);
  assert.equal(rewritten(await run('/css/site.css')), `/_deploys/production/${PROD}/css/site.css`);
  assert.equal(
    rewritten(await run('/a%20b/x.js', { querystring: { v: { value: '1' } } })),
    `/_deploys/production/${PROD}/a%20b/x.js`,
  );
});

test('/docs -> 301 /docs/ (no query)', async () => {
  const out = await run('/docs');
  assertRedirect(out, 301, '/docs/');
  assert.equal(out.statusDescription, 'Moved Permanently');
});

test('/docs -> 301 /docs/ keeping the query string', async () => {
  const out = await run('/docs', { querystring: { a: { value: '1' }, b: { value: '' } } });
  assertRedirect(out, 301, '/docs/?a=1&b');
});

test('/docs -> 301 keeps multiValue query parameters and encoding', async () => {
  const out = await run('/docs', {
    querystring: {
      a: { value: '1', multiValue: [{ value: '1' }, { value: '2' }] },
      q: { value: 'x%20y' },
      e: { value: '', multiValue: [{ value: '' }, { value: 'z' }] },
    },
  });
  assertRedirect(out, 301, '/docs/?a=1&a=2&q=x%20y&e&e=z');
});

test('directory 301 cannot become a protocol-relative redirect', async () => {
  assertRedirect(await run('//evil'), 301, '/evil/');
  assertRedirect(await run('///evil%2ecom'), 301, '/evil%2ecom/');
});

test('no production deploy yet -> 404', async () => {
  assertNotFound(await run('/', {}, {}));
  assertNotFound(await run('/css/site.css', {}, { 'preview-feat-x': FEAT }));
});

test('invalid deploy ids in KVS -> 404', async () => {
  for (const bad of ['../evil', 'a/b', '..', '', '.x', 'a.b', '-x', 'x'.repeat(101), 'a b']) {
    assertNotFound(await run('/', {}, { production: bad }), false);
  }
  // boundary: 100 chars is fine
  const id = 'x'.repeat(100);
  assert.equal(rewritten(await run('/', {}, { production: id })), `/_deploys/production/${id}/index.html`);
});

// ---- hosts -------------------------------------------------------------

test('host with port, uppercase host, trailing dot', async () => {
  assert.equal(rewritten(await run('/', { host: 'example.com:443' })), `/_deploys/production/${PROD}/index.html`);
  assert.equal(rewritten(await run('/', { host: 'EXAMPLE.COM' })), `/_deploys/production/${PROD}/index.html`);
  assert.equal(
    rewritten(await run('/', { host: 'Feat-X.Preview.Example.COM:8443' })),
    `/_deploys/preview-feat-x/${FEAT}/index.html`,
  );
  assert.equal(
    rewritten(await run('/', { host: 'feat-x.preview.example.com.' })),
    `/_deploys/preview-feat-x/${FEAT}/index.html`,
  );
});

test('missing host header -> production', async () => {
  assert.equal(rewritten(await run('/', { noHost: true })), `/_deploys/production/${PROD}/index.html`);
});

test('*.cloudfront.net and aliases -> production', async () => {
  assert.equal(
    rewritten(await run('/', { host: 'd111111abcdef8.cloudfront.net' })),
    `/_deploys/production/${PROD}/index.html`,
  );
  assert.equal(rewritten(await run('/x.txt', { host: 'www.example.com' })), `/_deploys/production/${PROD}/x.txt`);
});

test('bare preview domain -> production', async () => {
  assert.equal(rewritten(await run('/', { host: 'preview.example.com' })), `/_deploys/production/${PROD}/index.html`);
});

test('a host that merely ends with the preview domain text -> production', async () => {
  assert.equal(
    rewritten(await run('/', { host: 'feat-xpreview.example.com' })),
    `/_deploys/production/${PROD}/index.html`,
  );
});

// ---- previews -------------------------------------------------------------

test('preview host -> preview deploy', async () => {
  const { handler, log } = load(DEFAULT_KVS);
  const out = await handler(reqEvent('/a/b.css', { host: 'feat-x.preview.example.com' }));
  assert.equal(rewritten(out), `/_deploys/preview-feat-x/${FEAT}/a/b.css`);
  assert.deepEqual(log.keys, ['redirect:/a/b.css', 'preview-feat-x']);
});

test('preview host / and /dir/', async () => {
  const host = 'feat-x.preview.example.com';
  assert.equal(rewritten(await run('/', { host })), `/_deploys/preview-feat-x/${FEAT}/index.html`);
  assert.equal(rewritten(await run('/docs/', { host })), `/_deploys/preview-feat-x/${FEAT}/docs/index.html`);
});

test('preview directory 301 carries noindex', async () => {
  const out = await run('/docs', { host: 'feat-x.preview.example.com', querystring: { a: { value: '1' } } });
  assertRedirect(out, 301, '/docs/?a=1', true);
});

test('unknown preview (no KVS key) -> 404 with noindex', async () => {
  assertNotFound(await run('/', { host: 'nope.preview.example.com' }), true);
});

test('invalid preview slugs -> 404 with noindex, no KVS read', async () => {
  for (const host of [
    'bad_slug.preview.example.com',
    'a.b.preview.example.com',
    '-x.preview.example.com',
    'x-.preview.example.com',
    `${'a'.repeat(64)}.preview.example.com`,
    '.preview.example.com',
  ]) {
    const { handler, log } = load({ ...DEFAULT_KVS, 'preview-bad_slug': FEAT, 'preview-a.b': FEAT });
    assertNotFound(await handler(reqEvent('/', { host })), true);
    assert.deepEqual(log.keys, [], host);
  }
  // 63-character label is fine
  const slug = 'a'.repeat(63);
  assert.equal(
    rewritten(await run('/', { host: `${slug}.preview.example.com` }, { [`preview-${slug}`]: FEAT })),
    `/_deploys/preview-${slug}/${FEAT}/index.html`,
  );
});

test('previews off -> preview-looking host goes to production', async () => {
  const out = await run('/', { host: 'x.preview.example.com' }, DEFAULT_KVS, '');
  assert.equal(rewritten(out), `/_deploys/production/${PROD}/index.html`);
  const nf = await run('/', { host: 'x.preview.example.com' }, {}, '');
  assertNotFound(nf, false);
});

// ---- path safety --------------------------------------------------------------

test('path traversal and bad encodings -> 404 without KVS reads', async () => {
  for (const uri of [
    '/../_skiff/state.json',
    '/%2e%2e/_skiff/state.json',
    '/a/%2E./b',
    '/a/.%2e/b',
    '/a/./b',
    '/a/..',
    '/bad%zz',
    '/bad%',
    '/a%2f..%2f_skiff/state.json',
    '/a%5c..%5cb',
    '/a\\b',
    '/a%00b',
    'index.html',
    '',
  ]) {
    const { handler, log } = load(DEFAULT_KVS);
    assertNotFound(await handler(reqEvent(uri)), false);
    assert.deepEqual(log.keys, [], uri);
  }
});

test('path traversal on a preview host -> 404 with noindex', async () => {
  assertNotFound(await run('/%2e%2e/x', { host: 'feat-x.preview.example.com' }), true);
});

test('dots inside names are fine', async () => {
  assert.equal(rewritten(await run('/a..b/c...d.txt')), `/_deploys/production/${PROD}/a..b/c...d.txt`);
  assert.equal(rewritten(await run('/.well-known/x.json')), `/_deploys/production/${PROD}/.well-known/x.json`);
});

// ---- redirects -------------------------------------------------------------------

test('redirect entry -> 301 with the query appended', async () => {
  const data = { ...DEFAULT_KVS, 'redirect:/old/': '301 /new/' };
  const out = await run('/old/', { querystring: { q: { value: '1' } } }, data);
  assertRedirect(out, 301, '/new/?q=1');
  assert.deepEqual(out.headers['cache-control'], { value: 'public, max-age=300' });
  assertRedirect(await run('/old/', {}, data), 301, '/new/');
});

test('redirect location with its own query keeps it', async () => {
  const data = { ...DEFAULT_KVS, 'redirect:/go': '302 https://x.example/y?z=1' };
  const out = await run('/go', { querystring: { q: { value: '1' } } }, data);
  assertRedirect(out, 302, 'https://x.example/y?z=1');
  assert.equal(out.statusDescription, 'Found');
});

test('all allowed redirect codes', async () => {
  for (const code of [301, 302, 303, 307, 308]) {
    const out = await run('/r', {}, { 'redirect:/r': `${code} /t` });
    assertRedirect(out, code, '/t');
  }
});

test('redirect works without any deploy and before the directory 301', async () => {
  const out = await run('/old', {}, { 'redirect:/old': '308 /new' });
  assertRedirect(out, 308, '/new');
});

test('redirect key uses the original uri exactly', async () => {
  const data = { ...DEFAULT_KVS, 'redirect:/old/': '301 /new/' };
  assert.equal(rewritten(await run('/old/index.html', {}, data)), `/_deploys/production/${PROD}/old/index.html`);
  assertRedirect(await run('/old', {}, data), 301, '/old/');
});

test('malformed redirect entries are ignored', async () => {
  for (const v of ['200 /x', '404 /x', '301', '301 ', ' /x', '301/x', 'constructor /x', '301 /a b', '301 /a\r\nx: y', '']) {
    const data = { ...DEFAULT_KVS, 'redirect:/css/site.css': v };
    assert.equal(
      rewritten(await run('/css/site.css', {}, data)),
      `/_deploys/production/${PROD}/css/site.css`,
      JSON.stringify(v),
    );
  }
});

test('redirect on a preview host carries noindex', async () => {
  const data = { ...DEFAULT_KVS, 'redirect:/old/': '301 /new/' };
  assertRedirect(await run('/old/', { host: 'feat-x.preview.example.com' }, data), 301, '/new/', true);
});

// ---- viewer-response -------------------------------------------------------------

test('viewer-response: preview host gets x-robots-tag', async () => {
  const { handler, log } = load(DEFAULT_KVS);
  const e = resEvent('feat-x.preview.example.com:443');
  const out = await handler(e);
  assert.equal(out, e.response);
  assert.equal(out.statusCode, 200);
  assert.deepEqual(out.headers['x-robots-tag'], { value: 'noindex' });
  assert.deepEqual(log.keys, []);
});

test('viewer-response: production hosts untouched', async () => {
  for (const host of ['example.com', 'preview.example.com', 'd1.cloudfront.net', 'bad_slug.preview.example.com']) {
    const { handler } = load(DEFAULT_KVS);
    const e = resEvent(host);
    const out = await handler(e);
    assert.equal(out, e.response);
    assert.deepEqual(out.headers, {}, host);
  }
});

test('viewer-response: previews off -> untouched', async () => {
  const { handler } = load(DEFAULT_KVS, '');
  const out = await handler(resEvent('feat-x.preview.example.com'));
  assert.deepEqual(out.headers, {});
});

test('viewer-response keeps existing headers', async () => {
  const { handler } = load(DEFAULT_KVS);
  const e = resEvent('feat-x.preview.example.com');
  e.response.headers['content-type'] = { value: 'text/html' };
  const out = await handler(e);
  assert.deepEqual(out.headers, { 'content-type': { value: 'text/html' }, 'x-robots-tag': { value: 'noindex' } });
});

test("skiff's state is never reachable: every path lands inside the live deploy", async () => {
  for (const uri of ['/_skiff/state.json', '/_skiff/404.html', '/.skiff/manifest.json', '/_deploys/production/x.json']) {
    const out = rewritten(await run(uri));
    assert.equal(out, `/_deploys/production/${PROD}${uri}`);
  }
  // Climbing out of the deploy, to its manifest beside it or to the state, is refused.
  for (const uri of [`/../${PROD}.json`, '/%2e%2e/%2e%2e/_skiff/state.json', '/a/..%2f..%2f_skiff%2fstate.json']) {
    assertNotFound(await run(uri));
  }
});
