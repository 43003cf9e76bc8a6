// Browser tests of the operations console, in Debian's chromium through playwright-core.
// Run by tests/tests/api/console.rs, which starts the server on a seeded database and
// passes what this needs in the environment:
//   SCRM_CONSOLE_URL    the server's base URL (http://127.0.0.1:PORT)
//   SCRM_OPS_TOKEN      operations of tenant `dep`, which has a departed guide
//   SCRM_OPS_KEY        an API key of `dep` with the operations role: the console's sign-in
//   SCRM_ADMIN_TOKEN    an admin of tenant `acme` (funnel, projections)
//   SCRM_GUIDE_TOKEN    a guide of `acme`
//   SCRM_OTHER_CUSTOMER a customer of `acme` whom another guide alone serves
//   SCRM_LEAVER, SCRM_SUCCESSOR  the departed guide of `dep` and the successor to choose
//   SCRM_NOTICE_ERROR   the reason of `dep`'s one failed WeCom notice (with markup in it)
//   SCRM_CAMPAIGN       a finished campaign job of `acme`, with a holdout
//   SCRM_HELD_BACK      how many of the leaver's customers that successor cannot take
//   SCRM_SCREENSHOTS    where to save a PNG of each page (optional)
//   SCRM_CHROMIUM       the browser (default /usr/bin/chromium)
// Exits non-zero on the first failed check, printing what it saw.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (this script is run by tests/tests/api/console.rs)`);
  }
  return v;
}

const BASE = env("SCRM_CONSOLE_URL");
const CONSOLE = `${BASE}/console`;
const SHOTS = process.env.SCRM_SCREENSHOTS;
const TIMEOUT = 60_000;

// What each role is offered, by the API's rules (docs/api.md, tests/tests/api/access.rs).
const NAV = {
  operations: ["customers", "departures", "campaigns", "inbox"],
  admin: ["customers", "departures", "funnel", "campaigns", "inbox", "projections"],
  guide: ["customers"],
};

async function api(token, query, variables = {}) {
  const res = await fetch(`${BASE}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

function step(what) {
  console.log(`- ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.SCRM_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Playwright gives each launch a fresh, empty profile directory of its own.
  // Without the background-networking flags chromium stalls on a closed network.
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

// Every console message of type error, and every uncaught exception, on any page: a CSP
// violation is reported as one ("Refused to ...").
const problems = [];

async function session(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy|Refused to/i.test(m.text())) {
      problems.push(`${name}: console ${m.type()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`${name}: uncaught: ${e.message}`));
  return { context, page };
}

async function signIn(page, token, role) {
  const res = await page.goto(CONSOLE);
  await page.fill("#credential", token);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector(`#viewer[data-role="${role}"]`);
  assert.ok(!page.url().includes(token), "the credential must not be in the URL");
  const stored = await page.evaluate(() => ({
    session: Object.values(sessionStorage),
    local: Object.values(localStorage),
  }));
  assert.ok(stored.session.includes(token), "kept in sessionStorage");
  assert.ok(!stored.local.includes(token), "never in localStorage");
  const nav = await page.$$eval("nav a", (as) => as.map((a) => a.dataset.page));
  assert.deepEqual(nav, NAV[role], `${role}'s pages`);
  return res;
}

async function open(page, id) {
  await page.click(`nav a[data-page="${id}"]`);
  await page.waitForSelector(`#page[data-page="${id}"]`);
  await settled(page);
}

async function settled(page) {
  await page.waitForFunction(() => !document.querySelector("[data-loading]"));
}

// A PNG of the page under docs/console/; the whole page unless `fullPage` is false.
async function shot(page, name, fullPage = true) {
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
  }
}

async function theSecurityHeaders() {
  step("/console sends its security headers");
  const res = await fetch(CONSOLE);
  assert.equal(res.status, 200);
  const csp = res.headers.get("content-security-policy") ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'",
    "frame-ancestors 'none'", "base-uri 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.ok(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), csp);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.equal(res.headers.get("access-control-allow-origin"), null, "no CORS by default");
  const cors = await fetch(`${BASE}/graphql`, {
    method: "OPTIONS",
    headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "POST" },
  });
  assert.equal(cors.headers.get("access-control-allow-origin"), null, "no foreign origin allowed");
}

async function operations() {
  const token = env("SCRM_OPS_TOKEN");
  const leaver = env("SCRM_LEAVER");
  const successor = env("SCRM_SUCCESSOR");
  const { context, page } = await session("operations");

  step("operations: sign-in page in Chinese, then the language switch");
  await page.goto(CONSOLE);
  assert.equal(await page.textContent("h1"), "SCRM 运营控制台");
  await shot(page, "sign-in");
  step("operations: a wrong credential is refused on the page");
  await page.fill("#credential", "not-a-token");
  await page.click("#sign-in button[type=submit]");
  await page.waitForFunction(() => document.getElementById("sign-in-error").textContent.length > 0);
  assert.equal(await page.locator("#viewer").count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  step("operations: sign in with an API key");
  await signIn(page, env("SCRM_OPS_KEY"), "operations");

  step("operations: the departures page lists the departed guide");
  await open(page, "departures");
  const row = page.locator(`tr[data-staff="${leaver}"]`);
  const remaining = await row.locator('td[data-col="customersRemaining"]').textContent();
  const { departures } = await api(token,
    "{ departures(first: 100) { nodes { staffId storeId storeName customersRemaining } } }");
  const expected = departures.nodes.find((d) => d.staffId === leaver);
  assert.equal(Number(remaining), expected.customersRemaining);
  const store = row.locator('td[data-col="store"] span');
  assert.equal(await store.textContent(), expected.storeName, "the store by name");
  assert.equal(await store.getAttribute("data-store-id"), expected.storeId);
  assert.ok(expected.customersRemaining > 0);

  step("operations: start a handover to one successor and watch it finish");
  await row.locator("button.handover").click();
  await page.waitForSelector("form#handover");
  await page.selectOption("#strategy", "SINGLE");
  await page.check(`input[name=successor][value="${successor}"]`);
  await shot(page, "departures-form");
  await page.click("#start-handover");
  const job = page.locator(".job.finished");
  await job.waitFor();
  assert.equal(await job.getAttribute("data-status"), "SUCCEEDED");
  const done = Number(await job.getAttribute("data-done"));
  const total = Number(await job.getAttribute("data-total"));
  assert.ok(total > 0 && done === total, `progress ${done}/${total}`);
  const jobId = await job.getAttribute("data-job-id");
  const { job: apiJob } = await api(token,
    "query($id: ID!) { job(id: $id) { status outcomes { kind code count } } }", { id: jobId });
  const shown = await page.$$eval(".job .outcomes li", (lis) =>
    lis.map((li) => `${li.dataset.kind} ${li.dataset.code} ${li.dataset.count}`).sort());
  assert.deepEqual(shown, apiJob.outcomes.map((o) => `${o.kind} ${o.code} ${o.count}`).sort());
  step("operations: the customers held back are listed one by one");
  const refused = apiJob.outcomes
    .filter((o) => o.kind === "CUSTOMER" && !["PLANNED", "SCHEDULED", "REQUESTED", "ACCEPTED", "TRANSFERRED"].includes(o.code))
    .reduce((n, o) => n + o.count, 0);
  assert.equal(refused, Number(env("SCRM_HELD_BACK")), JSON.stringify(apiJob.outcomes));
  await page.waitForSelector(`#refusals[data-count="${refused}"]`);
  assert.equal(await page.locator("#refusals tr[data-customer]").count(), refused);
  const first = await page.getAttribute("#refusals tr[data-customer]", "data-customer");
  const { customer } = await api(token, "query($id: ID!) { customer(id: $id) { name externalUserId } }", { id: first });
  assert.equal(await page.textContent('#refusals tr[data-customer] td[data-col="name"]'), customer.name ?? "–");
  assert.equal(await page.textContent('#refusals tr[data-customer] td[data-col="customer"]'), customer.externalUserId);
  await shot(page, "departures");

  step("operations: campaigns and the WeCom inbox");
  await open(page, "campaigns");
  await page.waitForSelector('#campaign-list[data-count="0"]');
  await page.fill("#campaign-id", "Sm9iOm5vbmU");
  await page.click("#campaign button[type=submit]");
  await page.waitForSelector("#campaign-missing");
  await open(page, "inbox");
  const { wecomNotices } = await api(token, "{ wecomNotices(first: 100, status: FAILED) { nodes { error } } }");
  assert.equal(Number(await page.getAttribute("#page .area", "data-count")), wecomNotices.nodes.length);
  assert.deepEqual(wecomNotices.nodes.map((n) => n.error), [env("SCRM_NOTICE_ERROR")]);
  assert.equal(await page.textContent('td[data-col="reason"]'), env("SCRM_NOTICE_ERROR"), "the reason, as text");
  assert.equal(await page.locator("#injected").count(), 0, "markup in data is never parsed");
  await shot(page, "inbox");

  step("operations: a failed notice is queued again from its row");
  await page.click('tr[data-dedup-key="console-e2e"] button.retry');
  await page.waitForSelector('tr[data-dedup-key="console-e2e"][data-retried="true"]');
  // The server's inbox tick may already have tried it again: either way it left the
  // failed state it was in, with its attempts started again.
  const retried = await api(token, "{ wecomNotices(first: 100) { nodes { dedupKey status attempts error } } }");
  const notice = retried.wecomNotices.nodes.find((n) => n.dedupKey === "console-e2e");
  assert.ok(notice.attempts < 3, JSON.stringify(notice));

  step("operations: the pages an analyst uses are not offered, nor reachable by URL");
  await page.goto(`${CONSOLE}#/funnel`);
  await page.waitForSelector("#not-for-role");

  step("operations: English labels");
  await page.click("#lang");
  assert.equal(await page.textContent("h1"), "SCRM operations console");
  await page.click("#lang");
  await context.close();
}

async function admin() {
  const token = env("SCRM_ADMIN_TOKEN");
  const { context, page } = await session("admin");
  await signIn(page, token, "admin");

  for (const [by, kind] of [["STORE", "bars"], ["STAFF", "bars"], ["CHANNEL", "bars"], ["COHORT", "line"], ["CAMPAIGN", "bars"]]) {
    step(`admin: the funnel and coupon charts by ${by} (${kind}) show the API's numbers`);
    await open(page, "funnel");
    await page.selectOption("#chart-kind", kind);
    await settled(page);
    await page.selectOption("#dimension", by);
    await page.waitForSelector(`#page .area[data-dimension="${by}"]`);
    const data = await api(token, `query($by: Dimension!) {
      funnel(by: $by, first: 100) { nodes { key friends firstPurchase repurchase loyal } }
      couponRedemption(by: $by, first: 100) { nodes { key issued redeemed expired } } }`, { by });
    for (const [chart, nodes, series] of [
      ["funnelChart", data.funnel.nodes, ["friends", "firstPurchase", "repurchase", "loyal"]],
      ["redemptionChart", data.couponRedemption.nodes, ["issued", "redeemed", "expired"]],
    ]) {
      const want = nodes.flatMap((n) => series.map((s) => `${n.key}|${s}|${n[s]}`)).sort();
      const got = await page.$$eval(`#${chart} .mark`, (ms) =>
        ms.map((m) => `${m.dataset.key}|${m.dataset.series}|${m.dataset.value}`).sort()).catch(() => []);
      assert.deepEqual(got, want, `${chart} by ${by}`);
      if (nodes.length) {
        assert.equal(await page.getAttribute(`#${chart}`, "data-kind"), kind);
      }
    }
    if (by === "STORE") {
      assert.ok(data.funnel.nodes.length > 0, "the seeded tenant has a funnel");
      await shot(page, "funnel");
    }
    if (by === "COHORT") {
      await shot(page, "funnel-cohort-lines");
    }
  }

  step("admin: a campaign's arms and uplift as the API gives them");
  await open(page, "campaigns");
  const campaign = env("SCRM_CAMPAIGN");
  const { campaignResults: r } = await api(token, `query($id: ID!) { campaignResults(id: $id) {
    conversionUplift redemptionUplift reached { customers buyers } heldOut { customers buyers } } }`,
  { id: campaign });
  assert.ok(r && r.reached.customers > 0 && r.heldOut && r.heldOut.customers > 0, JSON.stringify(r));
  step("admin: the campaigns are listed, and one opens with a click");
  const { campaigns } = await api(token, "{ campaigns(first: 100) { nodes { id text } } }");
  assert.ok(campaigns.nodes.some((c) => c.id === campaign), JSON.stringify(campaigns));
  await page.waitForSelector(`#campaign-list[data-count="${campaigns.nodes.length}"]`);
  assert.deepEqual(await page.$$eval("#campaign-list tr[data-campaign-id]", (trs) => trs.map((tr) => tr.dataset.campaignId)),
    campaigns.nodes.map((c) => c.id), "newest first, as the API lists them");
  await page.click(`#campaign-list tr[data-campaign-id="${campaign}"] button.open-campaign`);
  await page.waitForSelector("#campaign-results dl.uplift");
  assert.equal(await page.inputValue("#campaign-id"), campaign);
  const pct = (x) => (x === null ? "–" : `${(x * 100).toFixed(1)}%`);
  assert.equal(await page.textContent('[data-uplift="conversion"]'), pct(r.conversionUplift));
  assert.equal(await page.textContent('[data-uplift="redemption"]'), pct(r.redemptionUplift));
  for (const arm of ["reached", "heldOut"]) {
    assert.equal(await page.textContent(`#campaign-results tr[data-arm="${arm}"] td[data-col="customers"]`),
      String(r[arm].customers));
    assert.equal(await page.textContent(`#campaign-results tr[data-arm="${arm}"] td[data-col="buyers"]`),
      String(r[arm].buyers));
  }
  await shot(page, "campaigns");

  step("admin: projections, and a rebuild followed to the end");
  await open(page, "projections");
  const { projections } = await api(token, "{ projections(first: 100) { nodes { name codeVersion } } }");
  const rows = await page.$$eval("tr[data-projection]", (trs) => trs.map((tr) => tr.dataset.projection));
  assert.deepEqual(rows.sort(), projections.nodes.map((p) => p.name).sort());
  await page.click('button.rebuild[data-projection="repurchase_funnel"]');
  const job = page.locator("#rebuild-job .job.finished");
  await job.waitFor();
  assert.equal(await job.getAttribute("data-status"), "SUCCEEDED");
  assert.equal(await job.getAttribute("data-done"), await job.getAttribute("data-total"));
  await settled(page);
  await shot(page, "projections");
  await context.close();
}

async function guide() {
  const token = env("SCRM_GUIDE_TOKEN");
  const other = env("SCRM_OTHER_CUSTOMER");
  const { context, page } = await session("guide");
  await signIn(page, token, "guide");

  step("guide: sees their own customers only");
  await settled(page);
  const { customers } = await api(token, "{ customers(first: 100) { nodes { externalUserId } } }");
  const listed = await page.$$eval("tr[data-customer]", (trs) => trs.map((tr) => tr.dataset.customer));
  assert.deepEqual(listed.sort(), customers.nodes.map((c) => c.externalUserId).sort());
  assert.ok(listed.length > 0, "the guide serves customers");
  assert.ok(!(await page.textContent("body")).includes(other), "another guide's customer is not shown");
  await shot(page, "customers-guide", false);

  step("guide: a reload keeps the session (this tab's sessionStorage)");
  await page.reload();
  await page.waitForSelector('#viewer[data-role="guide"]');
  await settled(page);

  step("guide: no page or button of operations, even by URL");
  for (const id of ["departures", "funnel", "projections", "inbox", "campaigns"]) {
    await page.goto(`${CONSOLE}#/${id}`);
    await page.waitForSelector("#not-for-role");
  }
  assert.equal(await page.locator("button.handover, button.rebuild, #rebuild-all").count(), 0);

  step("sign-out forgets the credential");
  await page.click("#sign-out");
  await page.waitForSelector("#credential");
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await context.close();
}

let failed = false;
try {
  await theSecurityHeaders();
  await operations();
  await admin();
  await guide();
  step("no console errors or CSP violations on any page");
  assert.deepEqual(problems, []);
  console.log("console e2e: all checks passed");
} catch (e) {
  failed = true;
  console.error(e);
  if (problems.length) {
    console.error("console errors seen:\n" + problems.join("\n"));
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
