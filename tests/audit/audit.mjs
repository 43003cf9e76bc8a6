#!/usr/bin/env node
// GraphQL-over-HTTP spec audit of a live server, with graphql-http's auditServer.
//
//   node tests/audit/audit.mjs http://127.0.0.1:8080/graphql
//
// SCRM_AUDIT_TOKEN, when set, is sent as `Authorization: Bearer <token>` on every request.
// Prints one line `<status> <id> <name>` per audit (status: ok, notice = failed MAY,
// warn = failed SHOULD, error = failed MUST), a short reason/response for every
// non-ok one, then the counts. Exits 1 if any MUST failed (status error), 2 if the
// audit could not run at all (bad usage, server unreachable, timeout), 0 otherwise.
import { auditServer } from 'graphql-http';

const BODY_MAX = 200; // characters of a failing response's body to show
const REQUEST_TIMEOUT_MS = Number(process.env.SCRM_AUDIT_TIMEOUT_MS || 15000);

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>   (env SCRM_AUDIT_TOKEN: optional bearer token)');
  process.exit(2);
}
try {
  new URL(url);
} catch {
  console.error(`audit: not a URL: ${url}`);
  process.exit(2);
}

const token = (process.env.SCRM_AUDIT_TOKEN || '').trim();

// auditServer calls fetchFn(url) and fetchFn(url, { method, headers, body }) with
// `headers` a plain object: copy it into a Headers so the token can be added
// whatever shape it has, and never drop the audit's own headers.
async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers || {});
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, {
    ...init,
    headers,
    signal: init.signal || AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

function oneLine(s, max) {
  const flat = String(s).replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}… (${flat.length} chars)` : flat;
}

// The failing response of an AuditFail (a fetch Response). Its body may already
// have been read by the assertion that failed, so reading it is best effort.
async function describeResponse(res) {
  if (!res || typeof res.status !== 'number') return 'no response';
  const ct = res.headers?.get?.('content-type') ?? '-';
  let body;
  if (res.bodyUsed) {
    body = '<body already read by the audit>';
  } else {
    try {
      body = JSON.stringify(oneLine(await res.text(), BODY_MAX));
    } catch (err) {
      body = `<body unreadable: ${err?.message ?? err}>`;
    }
  }
  return `HTTP ${res.status}, content-type: ${ct}, body: ${body}`;
}

let results;
try {
  results = await auditServer({ url, fetchFn });
} catch (err) {
  // auditServer throws only on fatal problems (connection refused, timeout...).
  const cause = err?.cause ? ` (${err.cause.code || err.cause.message || err.cause})` : '';
  console.error(`audit: could not run against ${url}: ${err?.message ?? err}${cause}`);
  process.exit(2);
}

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status] = (counts[r.status] ?? 0) + 1;
  console.log(`${r.status} ${r.id} ${r.name}`);
  if (r.status !== 'ok') {
    console.log(`    reason: ${r.reason}`);
    console.log(`    response: ${await describeResponse(r.response)}`);
  }
}

console.log('');
console.log(
  `audit: ${results.length} audits: ${counts.ok} ok, ${counts.error} error (MUST), ` +
    `${counts.warn} warn (SHOULD), ${counts.notice} notice (MAY)`,
);
if (counts.error > 0) {
  const failed = results.filter((r) => r.status === 'error').map((r) => r.id);
  console.log(`audit: FAILED: MUST requirements not met: ${failed.join(', ')}`);
  process.exit(1);
}
console.log('audit: passed (no MUST failure)');
process.exit(0);
