// The licence in Chromium: with the licence run out, an administrator signs in and finds the
// console closed (navigation without the gated pages, "Licence needed" on them), a member is
// told whom to ask, an expired licence file is refused with the reason, and a valid one opens
// everything at once, without a restart. Checked and photographed like every walk-through.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… MEMBER=… MEMBER_PASSWORD=… EXPIRED=… VALID=… SHOTS=dir
//        node license.mjs

import { launch, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, MEMBER: member,
  MEMBER_PASSWORD: memberPassword, EXPIRED: expired, VALID: valid, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

async function signIn(page, who, secret) {
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", who);
  await page.fill("input[name=password]", secret);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
}

try {
  const context = await newContext();
  // The closed pages answer 503 and the refused licence 422, on purpose.
  const page = watch(await context.newPage(), [503, 422]);
  const check = (name) => checkPage(page, name);

  step("the licence has run out: the console is closed");
  await signIn(page, email, password);
  summary.nav_closed = await page.locator("header nav a").allTextContents();
  await check("license-closed-home");
  const needed = await page.goto(`${base}/console/hosts`);
  summary.needed_status = needed.status();
  summary.needed_heading = await page.locator("main h1").textContent();
  await check("license-needed");
  await page.click("text=Open the licence page");
  await page.waitForURL(`${base}/console/license`);
  summary.headline = await page.locator("#standing-h").textContent();
  await check("license-expired");

  step("a member is told whom to ask");
  const other = await newContext();
  const memberPage = watch(await other.newPage());
  await signIn(memberPage, member, memberPassword);
  await memberPage.click("header nav >> text=Licence");
  await memberPage.waitForURL(`${base}/console/license`);
  summary.member_told = await memberPage.locator("section[aria-labelledby=ask-h] p").textContent();
  await checkPage(memberPage, "license-expired-member");
  await other.close();

  step("an expired licence file is refused with the reason");
  await page.fill("textarea[name=license]", expired);
  await page.click("button:text-is('Install')");
  summary.refused = await page.locator("p.alert").textContent();
  await check("license-refused");

  step("a valid one opens the console at once");
  await page.fill("textarea[name=license]", valid);
  await page.click("button:text-is('Install')");
  await page.waitForURL(/done=license-installed/);
  summary.installed_headline = await page.locator("#standing-h").textContent();
  await check("license-installed");
  await page.click("header nav >> text=Hosts");
  await page.waitForURL(`${base}/console/hosts`);
  summary.nav_open = await page.locator("header nav a").allTextContents();
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
