import cf from 'cloudfront';

// skiff router (CloudFront Functions, runtime cloudfront-js-2.0), on viewer-request and
// viewer-response. skiff deploys it without whole-line comments: keep that < 10 KB. What
// it answers is router/SPEC.md; the
// table router/cases.json holds it (and `skiff serve`) to it.
// The preview domain below is filled in by skiff ('' = previews off).
const PREVIEWS = '__SKIFF_PREVIEWS__';

const kvs = cf.kvs();
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
// A delta deploy's base: '<target>/<deploy id>'.
const BASE = /^(production|preview-[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\/[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
// "<canary deploy id> <weight>" (trimmed); the weight, 1..99, has one or two digits.
const CANARY = /^([A-Za-z0-9][A-Za-z0-9_-]{0,99}) \s*(\d\d?)$/;
const COHORT = /^\d\d?$/;
const BAD = /[\s\u0000-\u001f\u007f-\u009f]/;
const COOKIE = 'skiff-canary';
const COHORT_HEADER = 'x-skiff-cohort';
const TEXT = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  404: 'Not Found',
};

// Lowercased host, ':port' and a trailing dot removed; '' when missing.
function hostOf(req) {
  const h = req && req.headers && req.headers.host;
  if (!h || typeof h.value !== 'string') return '';
  return h.value.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
}

// True for any host under the preview domain (valid slug or not).
function underPreviews(host) {
  return PREVIEWS !== '' && host.endsWith('.' + PREVIEWS);
}

// 'production', 'preview-<slug>', or null (preview host, invalid slug).
function targetOf(host) {
  if (!underPreviews(host)) return 'production';
  const slug = host.slice(0, host.length - PREVIEWS.length - 1);
  return SLUG.test(slug) ? 'preview-' + slug : null;
}

function respond(code, headers, noindex, body) {
  if (noindex) headers['x-robots-tag'] = { value: 'noindex' };
  const r = { statusCode: code, statusDescription: TEXT[code], headers: headers };
  if (body !== undefined) r.body = body;
  return r;
}

function notFound(noindex) {
  return respond(404, {
    'content-type': { value: 'text/plain; charset=utf-8' },
    'cache-control': { value: 'no-store' },
  }, noindex, 'Not Found');
}

// Every segment, percent-decoded, must not be '.' or '..' (also after
// splitting on a decoded '/') and must not hold a backslash or NUL.
function safePath(uri) {
  if (typeof uri !== 'string' || uri.charAt(0) !== '/') return false;
  const segs = uri.split('/');
  for (let i = 0; i < segs.length; i++) {
    let s;
    try {
      s = decodeURIComponent(segs[i]);
    } catch (e) {
      return false;
    }
    if (s.indexOf('\\') !== -1 || s.indexOf('\u0000') !== -1) return false;
    const parts = s.split('/');
    for (let j = 0; j < parts.length; j++) {
      if (parts[j] === '.' || parts[j] === '..') return false;
    }
  }
  return true;
}

// Rebuild '?a=1&b&c=x&c=y' from the parsed querystring ('' when empty).
function qs(q) {
  const out = [];
  for (var k in q) {
    const v = q[k];
    if (!v) continue;
    const vals = v.multiValue ? v.multiValue : [v];
    for (let i = 0; i < vals.length; i++) {
      const x = vals[i] ? vals[i].value : '';
      out.push(x === '' || x === undefined || x === null ? k : k + '=' + x);
    }
  }
  return out.length ? '?' + out.join('&') : '';
}

// One trailing '/' removed, unless the path is '/'.
function norm(x) {
  return x.length > 1 && x.endsWith('/') ? x.slice(0, -1) : x;
}

// A rule -> [status, to], or null when malformed; 200 (a rewrite) only when rw.
function rule(code, to, rw) {
  const ok = code === 200 ? rw : [301, 302, 303, 307, 308].indexOf(code) !== -1;
  return ok && typeof to === 'string' && to !== '' && !BAD.test(to) ? [code, to] : null;
}

// "<status> <to>" -> rule, or null.
function parse(v, rw) {
  if (typeof v !== 'string') return null;
  v = v.trim();
  const i = v.indexOf(' ');
  const code = v.slice(0, i);
  return i > 0 && /^(200|30[12378])$/.test(code) ? rule(+code, v.slice(i + 1).trim(), rw) : null;
}

function redirect(r, q, noindex) {
  return respond(r[0], {
    location: { value: r[1].indexOf('?') === -1 ? r[1] + q : r[1] },
    'cache-control': { value: 'public, max-age=300' },
  }, noindex);
}

// The captures ('$name', '$splat') of a pattern `from` on a normalised path, or null.
function match(from, path) {
  const f = norm(from).split('/');
  const s = path.split('/');
  const cap = {};
  for (let i = 0; i < f.length; i++) {
    const g = f[i];
    if (g === '*' && i === f.length - 1) {
      cap.$splat = s.slice(i).join('/');
      return cap;
    }
    if (i >= s.length) return null;
    if (g.length > 1 && g.charAt(0) === ':') {
      if (s[i] === '') return null;
      cap['$' + g.slice(1)] = s[i];
    } else if (g !== s[i]) return null;
  }
  return f.length === s.length ? cap : null;
}

// 32-bit FNV-1a over UTF-16 code units (h * 16777619 as a sum of shifts).
function fnv(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = (h + (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)) >>> 0;
  }
  return h >>> 0;
}

async function get(key) {
  try {
    return await kvs.get(key); // throws when the key is missing
  } catch (e) {
    return null;
  }
}

async function handler(event) {
  const req = event.request;
  const host = hostOf(req);
  const noindex = underPreviews(host);
  const target = targetOf(host);
  const hs = req.headers || (req.headers = {});

  if (event.context && event.context.eventType === 'viewer-response') {
    const res = event.response;
    if (noindex) {
      if (!res.headers) res.headers = {};
      res.headers['x-robots-tag'] = { value: 'noindex' };
    }
    const n = hs[COHORT_HEADER];
    if (n && COHORT.test(n.value)) {
      if (!res.cookies) res.cookies = {};
      res.cookies[COOKIE] = { value: n.value, attributes: 'Path=/; Max-Age=2592000; Secure; SameSite=Lax' };
    }
    return res;
  }

  let raw = req.uri;
  if (!target || !safePath(raw)) return notFound(noindex);
  let p = decodeURIComponent(raw);
  const q = qs(req.querystring);

  // The deploy; on production, a canary takes the visitors of its cohorts.
  let id = await get(target);
  if (target === 'production') {
    const m = CANARY.exec(String(await get('canary')).trim());
    if (m && +m[2] > 0) {
      const ck = req.cookies && req.cookies[COOKIE];
      let c = ck && COHORT.test(ck.value) ? +ck.value : -1;
      if (c < 0) {
        c = Math.floor(Math.random() * 100);
        hs[COHORT_HEADER] = { value: '' + c };
      }
      if (c < +m[2]) id = m[1];
    }
  }
  const ok = typeof id === 'string' && ID.test(id);

  // Rules: the deploy's route table, or (none) the legacy site-wide redirects.
  let t = ok ? await get('routes:' + id) : null;
  let r = null;
  if (t === null) {
    r = parse(await get('redirect:' + raw), false);
    if (r) return redirect(r, q, noindex);
    if (!ok) return notFound(noindex);
    t = {};
  } else {
    try {
      t = JSON.parse(t) || {};
    } catch (e) {
      t = {};
    }
    const v = await get('r:' + id + ':' + norm(p));
    if (v !== null) {
      r = v === '-' ? null : parse(v, true);
    } else if (Array.isArray(t.p)) {
      for (let i = 0; i < t.p.length; i++) {
        const e = t.p[i];
        if (!Array.isArray(e) || typeof e[0] !== 'string' || e[0].charAt(0) !== '/') continue;
        if (typeof e[1] !== 'string' || typeof e[2] !== 'number') continue;
        const cap = match(e[0], norm(p));
        if (!cap) continue;
        // The first match is the rule (ignored when malformed).
        r = rule(e[2], e[1].replace(/:(\w+)/g, (x, k) => (cap['$' + k] === undefined ? x : encodeURI(cap['$' + k]))), true);
        break;
      }
    }
    if (r) {
      if (r[0] !== 200) return redirect(r, q, noindex);
      raw = r[1];
      if (!safePath(raw)) return notFound(noindex);
      p = decodeURIComponent(raw);
    }
  }

  // Paths. A delta deploy (b, m) holds the paths of its delta index; its base the rest.
  const count = (v) => (typeof v === 'number' && v >= 1 && v % 1 === 0 ? v : 0);
  const n = count(t.n);
  const m = typeof t.b === 'string' && BASE.test(t.b) ? count(t.m) : 0;
  const seen = {};
  // The letter of path x's entry in index `pre` of `k` buckets, or ''.
  const look = async (x, pre, k) => {
    const h = fnv(x);
    const key = pre + id + ':' + (h % k);
    if (!(key in seen)) seen[key] = await get(key);
    const b = typeof seen[key] === 'string' ? seen[key] : '';
    const hex = ('0000000' + h.toString(16)).slice(-8);
    for (let i = 0; i + 9 <= b.length; i += 9) {
      if (b.slice(i + 1, i + 9) === hex) return b.charAt(i);
    }
    return '';
  };
  const serve = async (x) => {
    const own = !m || (await look(decodeURIComponent(x), 'd:', m)) !== '';
    req.uri = '/_deploys/' + (own ? target + '/' + id : t.b) + x;
    return req;
  };
  const moved = (x) => respond(301, { location: { value: x + q } }, noindex);
  if (!n) {
    // Legacy paths, judged on raw (as before route tables).
    if (raw.endsWith('/')) return serve(raw + 'index.html');
    // Collapse leading slashes: '//host' would be a protocol-relative URL.
    if (raw.slice(raw.lastIndexOf('/') + 1).indexOf('.') === -1) return moved('/' + raw.replace(/^\/+/, '') + '/');
    return serve(raw);
  }

  // The page index: the type letter of a page path, or ''.
  const page = (x) => look(x, 'i:', n);
  const clean = t.c === 1;
  const spa = t.s === 1;
  const last = p.slice(p.lastIndexOf('/') + 1);
  const dir = p.endsWith('/');
  if (dir) {
    if ((await page(p)) === 'd') return serve(raw + 'index.html');
    if (clean && (await page(norm(p))) === 'c') return moved(norm(raw));
    return serve(spa ? '/index.html' : raw + 'index.html');
  }
  if (last.indexOf('.') === -1) {
    const k = await page(p);
    if (k === 'c' || k === 'f') return serve(raw);
    if ((await page(p + '/')) === 'd') return moved(raw + '/');
    return serve(spa ? '/index.html' : raw);
  }
  const html = /\.html$/;
  if (clean && last !== 'index.html' && html.test(p) && html.test(raw) && (await page(p.slice(0, -5))) === 'c') {
    return moved(raw.slice(0, -5));
  }
  return serve(raw);
}
