// Drives Debian's Chromium through Warden's pages with a virtual authenticator (CTAP2,
// internal transport, resident keys, user verification): first-run setup, sign in with the
// password, add a passkey, sign out, sign back in with the passkey and no email typed. On
// every page: no console error, no Content-Security-Policy violation, no serious or critical
// axe-core finding, and a screenshot at desktop (1280×800) and phone (390×844) width in
// $SHOTS. The last line printed is a JSON summary the Rust test checks.
// Usage: WARDEN_URL=http://localhost:PORT SETUP_LINK=… EMAIL=… PASSWORD=… SHOTS=dir node passkeys.mjs

import { launch, step } from "./harness.mjs";

const { WARDEN_URL: base, SETUP_LINK: setup, EMAIL: email, PASSWORD: password, SHOTS: shots } =
  process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);
try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  step("first-run setup");
  await page.goto(setup);
  await check("setup");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Create administrator");
  await page.waitForSelector("text=The administrator account is ready.");
  await check("setup-done");
  await page.click("a:has-text('Sign in')");
  await page.waitForURL(`${base}/sign-in`);

  step("password sign-in");
  await check("sign-in");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
  await check("console-home");
  step("a host waits for approval; approve it from the console");
  const csrf = (await context.cookies()).find((c) => c.name === "__Host-warden_csrf").value;
  const registered = await context.request.post(`${base}/api/v1/hosts`, {
    headers: { "x-csrf-token": csrf, origin: base },
    data: { name: "build-07", kind: "session" },
  });
  summary.host_registered = registered.status();
  await page.click("nav >> text=Hosts");
  await page.waitForURL(`${base}/console/hosts`);
  await check("console-hosts-pending");
  await page.click("text=Approve");
  await page.waitForURL(`${base}/console/hosts?done=host-approved`);
  summary.host_approved = await page.locator("text=The host is approved").count();
  await check("console-hosts-approved");
  await page.click("nav >> text=Licence");
  await page.waitForURL(`${base}/console/license`);
  await check("console-license");
  await page.click("nav >> text=Sessions");
  await page.waitForURL(`${base}/console/sessions`);
  await check("console-sessions");
  await page.click("nav >> text=Profile");
  await page.waitForURL(`${base}/console/profile`);
  await check("console-profile");

  step("another browser signs in; this one signs it out from the profile");
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await otherPage.goto(`${base}/sign-in`);
  await otherPage.fill("input[name=email]", email);
  await otherPage.fill("input[name=password]", password);
  await otherPage.click("text=Sign in with password");
  await otherPage.waitForURL(`${base}/console`);
  await page.reload();
  summary.devices_before = await page.locator("#devices li").count();
  await page.click("#devices li:not(:has(.tag)) >> text=Sign out");
  await page.waitForURL(`${base}/console/profile?done=device-signed-out`);
  summary.devices_after = await page.locator("#devices li").count();
  await check("console-profile-signed-out");
  await otherPage.goto(`${base}/console/profile`);
  await otherPage.waitForURL(/\/sign-in\?next=/);
  summary.other_sent_to = new URL(otherPage.url()).pathname + new URL(otherPage.url()).search;
  await other.close();

  await page.goto(`${base}/account/passkeys`);
  await page.waitForSelector(`text=Signed in as ${email}.`);
  await check("passkeys-empty");

  step("add a passkey");
  await page.fill("input[name=name]", "Work laptop");
  await page.click("text=Add a passkey");
  await page.waitForSelector("#passkeys strong:has-text('Work laptop')");
  await page.waitForSelector("#status.good");
  await check("passkeys-added");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  summary.credentials = credentials.length;
  summary.resident = credentials.every((c) => c.isResidentCredential);

  step("sign out");
  await page.click("text=Sign out");
  await page.waitForURL(`${base}/sign-in`);
  summary.signed_out_status = (await context.request.get(`${base}/api/v1/me`)).status();

  step("passkey sign-in, nothing typed");
  await page.click("text=Sign in with a passkey");
  await page.waitForURL(`${base}/console`);
  await page.goto(`${base}/account/passkeys`);
  await page.waitForSelector(`text=Signed in as ${email}.`);
  await page.waitForSelector("#passkeys .meta:not(:has-text('last used never'))");
  await check("signed-in-with-passkey");
  summary.signed_in = true;

  step("device approval page");
  await page.goto(`${base}/device`);
  await check("device");

  step("framed by another page");
  const evil = await context.newPage();
  const evilConsole = [];
  evil.on("console", (m) => evilConsole.push(m.text()));
  await evil.setContent(`<iframe src="${base}/sign-in" width="600" height="400"></iframe>`);
  await evil.waitForTimeout(1000);
  const framed = evil.frames().find((f) => f !== evil.mainFrame());
  let framedText = "";
  try {
    framedText = framed ? await framed.evaluate(() => document.body?.innerText ?? "") : "";
  } catch {
    framedText = "";
  }
  summary.framed_shows_sign_in = framedText.includes("Sign in");
  summary.frame_refused = evilConsole.some((t) => t.includes("frame-ancestors"));
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
