import cf from 'cloudfront';

// skiff router (CloudFront Functions, runtime cloudfront-js-2.0).
// Associated with viewer-request AND viewer-response. Keep this file < 10 KB.
// KVS keys: "production" / "preview-<slug>" -> deploy id,
//           "redirect:<uri>" -> "<status> <location>".
// The preview domain below is filled in by skiff ('' = previews off).
const PREVIEWS = '__SKIFF_PREVIEWS__';

const kvs = cf.kvs();
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const CODE = /^30[12378]$/;
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

// "<status> <location>" -> redirect response, or null if malformed.
function redirect(v, q, noindex) {
  if (typeof v !== 'string') return null;
  v = v.trim();
  const i = v.indexOf(' ');
  if (i < 1) return null;
  const code = v.slice(0, i);
  const loc = v.slice(i + 1).trim();
  if (!CODE.test(code) || loc === '' || /[\s\u0000-\u001f\u007f]/.test(loc)) return null;
  return respond(+code, {
    location: { value: loc.indexOf('?') === -1 ? loc + q : loc },
    'cache-control': { value: 'public, max-age=300' },
  }, noindex);
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

  if (event.context && event.context.eventType === 'viewer-response') {
    const res = event.response;
    if (noindex && target) {
      if (!res.headers) res.headers = {};
      res.headers['x-robots-tag'] = { value: 'noindex' };
    }
    return res;
  }

  if (!target) return notFound(noindex);
  const uri = req.uri;
  if (!safePath(uri)) return notFound(noindex);
  const q = qs(req.querystring);

  const r = redirect(await get('redirect:' + uri), q, noindex);
  if (r) return r;

  let path = uri;
  if (path.endsWith('/')) {
    path += 'index.html';
  } else if (path.slice(path.lastIndexOf('/') + 1).indexOf('.') === -1) {
    // Collapse leading slashes: '//host' would be a protocol-relative URL.
    return respond(301, {
      location: { value: '/' + uri.replace(/^\/+/, '') + '/' + q },
    }, noindex);
  }

  const id = await get(target);
  if (typeof id !== 'string' || !ID.test(id)) return notFound(noindex);
  req.uri = '/_deploys/' + target + '/' + id + path;
  return req;
}
