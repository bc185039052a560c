// Drives Debian's Chromium through Warden's pages with a virtual authenticator (CTAP2,
// internal transport, resident keys, user verification): sign in with the password, add a
// passkey, sign out, sign back in with the passkey and no email typed. Screenshots go to
// $SHOTS; the last line printed is a JSON summary the Rust test checks.
// Usage: WARDEN_URL=http://localhost:PORT EMAIL=… PASSWORD=… SHOTS=dir node passkeys.mjs

import { chromium } from "playwright-core";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, SHOTS: shots } = process.env;
const step = (name) => console.error(`step: ${name}`);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const summary = {};
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.on("console", (m) => console.error(`console: ${m.text()}`));
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

  step("password sign-in");
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/account/passkeys`);
  await page.waitForSelector(`text=Signed in as ${email}.`);

  step("add a passkey");
  await page.fill("input[name=name]", "Work laptop");
  await page.click("text=Add a passkey");
  await page.waitForSelector("#passkeys strong:has-text('Work laptop')");
  await page.waitForSelector("#status.good");
  await page.screenshot({ path: `${shots}/passkeys-added.png` });
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  summary.credentials = credentials.length;
  summary.resident = credentials.every((c) => c.isResidentCredential);

  step("sign out");
  await page.click("text=Sign out");
  await page.waitForURL(`${base}/sign-in`);
  const me = await page.evaluate(async () => (await fetch("/api/v1/me")).status);
  summary.signed_out_status = me;
  await page.screenshot({ path: `${shots}/sign-in.png` });

  step("passkey sign-in, nothing typed");
  await page.click("text=Sign in with a passkey");
  await page.waitForURL(`${base}/account/passkeys`);
  await page.waitForSelector(`text=Signed in as ${email}.`);
  await page.waitForSelector("#passkeys .meta:not(:has-text('last used never'))");
  await page.screenshot({ path: `${shots}/signed-in-with-passkey.png` });
  summary.signed_in = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
