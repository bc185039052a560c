// SAML in Chromium: the administrator adds a SAML provider on Admin → Single sign-on by
// pasting the IdP's metadata and sees what to register with the IdP; then someone else, in a
// fresh browser, types their work email on the sign-in page (home-realm discovery finds the
// provider for its domain), signs in at the IdP (pysaml2), whose
// page posts the signed response back across sites, and lands in the console with an account
// made for them — and, through the IdP group the administrator mapped to a workspace, in that
// workspace as a maintainer. Warden's pages are checked for console errors, CSP violations and axe
// findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… IDP=… IDP_METADATA=file SHOTS=dir node saml.mjs

import { readFileSync } from "node:fs";
import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, IDP: idp, IDP_METADATA: metadata, WORKSPACE: ws, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("the administrator adds a SAML provider");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/admin/sso`);
  const form = "section[aria-labelledby=add-saml-h] form";
  await page.fill(`${form} input[name=display_name]`, "Corp SAML");
  await page.fill(`${form} input[name=slug]`, "corp");
  await page.fill(`${form} textarea[name=metadata_xml]`, readFileSync(metadata, "utf8"));
  await page.fill(`${form} input[name=allowed_domains]`, "example.com");
  await page.check(`${form} input[name=jit]`);
  await page.click("button:text-is('Add SAML provider')");
  await page.waitForURL(/done=provider-added/);
  summary.listed = (await page.locator("ul.list li:has-text('Corp SAML')").textContent()).replace(/\s+/g, " ").trim();
  await check("admin-sso-saml");

  step("the IdP learns Warden's metadata");
  const sp = await (await fetch(`${base}/api/v1/auth/saml/corp/metadata`)).text();
  summary.registered = (await fetch(`${idp}/sp`, { method: "POST", body: sp })).status;

  step("the administrator maps the IdP's eng-team group to a workspace");
  await page.goto(`${base}/console/workspaces/${ws}/members`);
  const mapForm = "form[aria-label='Map a SAML group']";
  await page.fill(`${mapForm} input[name=group]`, "eng-team");
  await page.selectOption(`${mapForm} select[name=role]`, "maintainer");
  await page.click("button:text-is('Map SAML group')");
  await page.waitForURL(/done=group-mapped/);
  summary.mapped = (await page.locator("section[aria-labelledby=groups-h] ul.list").textContent()).replace(/\s+/g, " ").trim();
  await check("workspace-directory-groups");

  step("someone signs in with it in a fresh browser");
  const other = await newContext();
  const them = watch(await other.newPage());
  await them.goto(`${base}/sign-in`);
  // Home-realm discovery: their work email finds the provider trusted for its domain.
  await them.fill("form.sso-discover input[name=email]", "pat@example.com");
  await checkPage(them, "sign-in-sso-discovery");
  await them.click("button:text-is('Continue with single sign-on')");
  await them.waitForURL(new RegExp(`^${idp}/sso\\?`));
  await them.fill("input[name=user]", "pat@example.com");
  await them.fill("input[name=groups]", "eng-team, other");
  await them.click("button:text-is('Continue')");
  await them.waitForURL(`${base}/console`);
  summary.landed = new URL(them.url()).pathname;
  summary.me = await them.evaluate(async () => (await (await fetch("/api/v1/me")).json()).email);
  await checkPage(them, "console-after-saml");

  step("the administrator sees them joined through the group");
  await page.goto(`${base}/console/workspaces/${ws}/members`);
  summary.members = (await page.locator("section[aria-labelledby=members-h] ul.list").textContent()).replace(/\s+/g, " ").trim();
  await check("workspace-members-from-directory");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
