// api.js - the page's only way to the server: fetch with the API key, errors as ApiError.
// The key lives in sessionStorage (this tab only, gone when it closes) and is sent as
// `Authorization: Bearer KEY`, as server/http/auth.c expects.

const KEY_NAME = 'audioclass.apiKey';

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_NAME) || '';
  } catch {
    return ''; // storage disabled: work without a key
  }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_NAME, key);
    else sessionStorage.removeItem(KEY_NAME);
  } catch {
    /* storage disabled: the key is not kept */
  }
}

// An answer that is not 2xx, with the server's own error code and message.
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status; // HTTP status; 0 when the server could not be reached
    this.code = code;
    this.requestId = requestId || '';
  }
}

// fetch(path) with the key; resolves to the Response when 2xx, else throws ApiError.
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = apiKey();
  try {
    if (key) headers.set('Authorization', `Bearer ${key}`);
  } catch {
    throw new ApiError(0, 'bad_key', 'The API key has characters that cannot be sent in a header.');
  }
  let res;
  try {
    res = await fetch(path, { ...options, headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach the server (${e.message}).`);
  }
  if (res.ok) return res;
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON: keep the status text */
  }
  const err = body && body.error;
  throw new ApiError(res.status, (err && err.code) || `http_${res.status}`,
    (err && err.message) || res.statusText || `HTTP ${res.status}`, body && body.request_id);
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

// POST /classify: the file's bytes as the body; windows=1 asks for per-window segments.
export async function classify(model, blob, topK) {
  const q = new URLSearchParams({ model, top_k: String(topK), windows: '1' });
  // A file's own type may be wrong or empty (a .bin, a .txt): the server reads the bytes
  // whatever they claim, so anything that is not audio/* goes as octet-stream.
  const type = blob.type && blob.type.startsWith('audio/') ? blob.type : 'application/octet-stream';
  return apiJson(`/classify?${q}`, { method: 'POST', body: blob, headers: { 'Content-Type': type } });
}

// Why GET /stream refused a WebSocket: a browser's WebSocket reports a refused handshake only
// as "closed, 1006". The same request as a plain GET, without the key exactly as the
// WebSocket went (browsers cannot set a header on one), gets the server's JSON error:
// 401 (the server wants a key), 404 (no such model), 400 (a bad parameter). 426 (a GET that
// is no upgrade) means the checks that precede the upgrade passed: the refusal came after
// them (the server is draining or at --max-streams). Resolves to an ApiError, never throws.
export async function streamRefusal(query) {
  try {
    const res = await fetch(`/stream?${query}`, { cache: 'no-store' });
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    const err = body && body.error;
    return new ApiError(res.status, (err && err.code) || `http_${res.status}`,
      (err && err.message) || res.statusText || `HTTP ${res.status}`, body && body.request_id);
  } catch (e) {
    return new ApiError(0, 'network', `Cannot reach the server (${e.message}).`);
  }
}
