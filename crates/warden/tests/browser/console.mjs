// The console walk-through with a real warden-agent behind it, in Debian's Chromium: sign in,
// create a workspace (its name is markup, shown as text), set its repository, a secret
// variable and a provider key (never shown back), add a member, register a host (the test
// starts the real agent with the key the page shows) and approve it once it is connected,
// start a session from a prompt and watch its output arrive (terminal colours and markup in
// it shown as plain text), open a file of its worktree, edit it, see the diff, close the
// session, then the Users, Roles and Audit pages and the CSV export, and the activity feed.
// Every page is checked and photographed (see harness.mjs). The summary also carries, for
// each output line that arrived while the page was open, the time from the provider writing
// it to the line being in the page (milliseconds, one machine's clock).
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… MEMBER=… HOST=… REPO=… SHOTS=dir KEY_FILE=path
//        node console.mjs (the caller starts warden-agent with the key written to KEY_FILE)

import { writeFileSync } from "node:fs";
import { launch, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, MEMBER: member, HOST: host, REPO: repo,
  SHOTS: shots, KEY_FILE: keyFile } = process.env;
const NAME = 'Payments <script>alert(1)</script>"><img src=x onerror=alert(2)> {{7*7}}';
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);
try {
  const context = await newContext();
  // Each line the session page receives, with the time it arrived.
  await context.addInitScript(() => {
    document.addEventListener("DOMContentLoaded", () => {
      const out = document.getElementById("output");
      if (!out) return;
      window.__seen = [];
      new MutationObserver((records) => {
        const at = Date.now();
        for (const r of records) for (const n of r.addedNodes) window.__seen.push({ text: n.textContent, at });
      }).observe(out, { childList: true });
    });
  });
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);
  const done = (what) => page.waitForURL(new RegExp(`done=${what}`));

  step("sign in, sent there by the console");
  await page.goto(`${base}/console`);
  await page.waitForURL(/\/sign-in\?next=/);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
  await check("console-home");

  step("create a workspace and set it up");
  await page.click("nav >> text=Workspaces");
  await page.waitForURL(`${base}/console/workspaces`);
  await check("workspaces-empty");
  await page.fill("input[name=name]", NAME);
  await page.click("text=Create workspace");
  await done("workspace-created");
  summary.heading = await page.locator("main h1").textContent();
  await page.fill("input[name=repository]", repo);
  await page.click("text=Save settings");
  await done("settings-saved");
  const vars = page.locator("section[aria-labelledby=vars-h]");
  await vars.locator("input[name=name]").fill("GREETING");
  await vars.locator("input[name=value]").fill("hello-from-the-browser");
  await vars.locator("text=Save variable").click();
  await done("secret-set");
  const keys = page.locator("section[aria-labelledby=keys-h]");
  await keys.locator("select[name=name]").selectOption("claude-code");
  await keys.locator("input[name=value]").fill("sk-ant-browser-0123456789");
  await keys.locator("text=Save key").click();
  await done("secret-set");
  const html = await page.content();
  summary.secret_shown = html.includes("hello-from-the-browser") || html.includes("sk-ant-browser");
  summary.variable_set = await page.locator("li:has(code:text-is('GREETING')) .tag:text-is('set')").count();
  await check("workspace-settings");
  await page.click("nav.tabs >> text=Members");
  await page.fill("input[name=email]", member);
  await page.click("text=Add member");
  await done("member-added");
  summary.members = await page.locator("section[aria-labelledby=members-h] li").count();
  await check("workspace-members");

  step("register a host, start its agent with the key, approve it");
  await page.click("nav >> text=Hosts");
  await page.waitForURL(`${base}/console/hosts`);
  await page.fill("section[aria-labelledby=register-h] input[name=name]", host);
  await page.click("text=Register host");
  const key = (await page.locator("pre.key").textContent()).trim();
  summary.key_shown = key.startsWith("whk_");
  await check("host-key");
  // The test starts the real agent with the key it finds here.
  writeFileSync(keyFile, key);
  await page.click("text=Go to the host");
  await page.click("text=All hosts");
  await page.waitForURL(`${base}/console/hosts`);
  // The list refreshes itself until the agent is connected.
  await page.waitForSelector(`#host-lists li:has(strong:text-is('${host}')) .tag.online`, { timeout: 60000 });
  await check("hosts-waiting");
  await page.click("nav >> text=Home");
  summary.feed_waiting = await page.locator(`ol.feed a:has-text("Host ${host} waits for your approval")`).count();
  await page.click("nav >> text=Hosts");
  await page.waitForURL(`${base}/console/hosts`);
  // Another host registers meanwhile: the list shows it without a reload (htmx).
  const csrf = (await context.cookies()).find((c) => c.name === "__Host-warden_csrf").value;
  const registered = await context.request.post(`${base}/api/v1/hosts`, {
    headers: { "x-csrf-token": csrf, origin: base },
    data: { name: "build-08", kind: "session" },
  });
  summary.second_host = registered.status();
  await page.waitForSelector("#host-lists strong:text-is('build-08')", { timeout: 20000 });
  summary.refreshed_without_reload = true;
  await page.click(`button[aria-label="Approve ${host}"]`);
  await done("host-approved");

  step("start a session and watch its output arrive");
  await page.click("nav >> text=Workspaces");
  await page.click("main a:has-text('Payments')");
  await page.waitForURL(/\/console\/workspaces\/[0-9a-f-]+$/);
  await page.fill("textarea[name=prompt]", "Print the build log");
  await page.selectOption("select[name=provider]", "command");
  await page.selectOption("select[name=mode]", "chat");
  await page.click("summary");
  // LINES lines (10), GAP seconds apart (0.3); the benchmark asks for more, closer together.
  const lines = Number(process.env.LINES || 10);
  const gap = process.env.GAP || "0.3";
  const script =
    `i=1; while [ $i -le ${lines} ]; do printf 't=%s \\033[32mline %s\\033[0m <b>bold</b>\\n' "$(date +%s%3N)" $i; sleep ${gap}; i=$((i+1)); done; ` +
    'echo "says-$GREETING"; echo notes > notes.txt';
  await page.fill("textarea[name=command]", `sh\n-c\n${script}`);
  await check("workspace-sessions-form");
  await page.click("text=Start session");
  await page.waitForURL(/\/sessions\/[0-9a-f-]+$/);
  summary.session_url = new URL(page.url()).pathname;
  await page.waitForSelector("#session-status:text-is('done')", { timeout: 60000 });
  await page.waitForSelector("#output-state:has-text('has ended')");
  await page.waitForFunction(() => !document.getElementById("session-ended").textContent.startsWith("not yet"));
  summary.ended_fact = await page.locator("#session-ended").textContent();
  summary.stop_became = await page.locator("#stop-form button").textContent();
  summary.output = await page.locator("#output").innerText();
  summary.output_markup = await page.locator("#output b, #output script, #output img").count();
  summary.latencies = await page.evaluate(() =>
    (window.__seen || []).flatMap((s) => {
      const m = /t=(\d+)/.exec(s.text);
      return m ? [s.at - Number(m[1])] : [];
    }),
  );
  await check("session-done");

  step("a file of its worktree, edited; the diff");
  await page.click("a.button:text-is('Files')");
  await page.waitForURL(/\/files$/);
  await check("session-files");
  await page.click("ul.files a:text-is('README.md')");
  await page.waitForURL(/\/file\?path=README\.md$/);
  await page.fill("textarea[name=content]", "# demo\nchanged in the browser\n");
  await page.click("text=Save file");
  await done("file-saved");
  await check("session-file");
  await page.click("text=See the diff");
  await page.waitForURL(/\/diff$/);
  summary.diff_added = await page.locator("pre.diff .add:has-text('+changed in the browser')").count();
  await check("session-diff");

  step("close the session");
  await page.click("main h2 a");
  await page.click("text=Close: remove its worktree");
  await done("session-closed");
  await check("session-closed");

  step("administration: users, roles, audit and its export");
  await page.click("header nav >> text=Admin");
  await page.waitForURL(`${base}/console/admin/users`);
  await page.fill("section[aria-labelledby=invite-h] input[name=email]", "newcomer@example.com");
  await page.click("text=Send invitation");
  await done("invitation-sent");
  summary.invited = await page.locator("section[aria-labelledby=pending-h] strong:text-is('newcomer@example.com')").count();
  await check("admin-users");
  await page.click("nav.tabs >> text=Roles");
  await page.waitForURL(`${base}/console/admin/roles`);
  await check("admin-roles");
  await page.click("nav.tabs >> text=Single sign-on");
  await page.waitForURL(`${base}/console/admin/sso`);
  await check("admin-sso");
  await page.click("nav.tabs >> text=Mail log");
  await page.waitForURL(`${base}/console/admin/mail`);
  await check("admin-mail");
  await page.click("nav >> text=Audit");
  await page.waitForURL(`${base}/console/audit`);
  await page.fill("input[name=action]", "session.");
  await page.click("text=Show events");
  await page.waitForURL(/action=session\./);
  summary.audit_actions = await page.locator("ol.events strong").allTextContents();
  await check("audit");
  const csv = await page.getAttribute("a:has-text('Export CSV')", "href");
  const res = await context.request.get(`${base}${csv}`);
  summary.csv_status = res.status();
  summary.csv_has_file_written = (await res.text()).includes("session.file_written");

  step("the activity feed");
  await page.click("nav >> text=Home");
  await page.waitForURL(`${base}/console`);
  summary.feed_done = await page.locator("ol.feed a:has-text('Session done in Payments')").count();
  await check("console-home-activity");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
