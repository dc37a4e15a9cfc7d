// A user's access token the way a native app gets one, without MCP: discovery, dynamic client
// registration of a public client with a loopback redirect URI, authorization code + PKCE (S256)
// with a resource indicator, the sign-in in Chromium (login.mjs), then the code exchange.
//
// Usage: node idp/user-token.mjs ISSUER USERNAME [--resource URL] [--scope "mcp:tools"]
// Prints one JSON line: {"client_id", "redirect", "token"} where `redirect` is the URL the
// provider sent the browser to and `token` the token endpoint's answer; {"fatal": ...} on failure.

import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

import { login } from "./login.mjs";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { resource: { type: "string" }, scope: { type: "string", default: "mcp:tools" } },
});
const [issuer, username] = positionals;

async function json(response) {
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function main() {
  if (!issuer || !username) throw new Error("usage: node idp/user-token.mjs ISSUER USERNAME [--resource URL] [--scope S]");
  const meta = await json(await fetch(new URL("/.well-known/openid-configuration", issuer)));
  const redirectUri = "http://127.0.0.1/callback";
  const client = await json(
    await fetch(meta.registration_endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "interop user-token",
        application_type: "native",
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
      }),
    }),
  );

  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(16).toString("base64url");
  const auth = new URL(meta.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: redirectUri,
    scope: opts.scope,
    state,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    ...(opts.resource ? { resource: opts.resource } : {}),
  });

  const redirect = await login(auth.href, username);
  const params = new URL(redirect).searchParams;
  if (params.has("error")) throw new Error(`authorization failed: ${redirect}`);
  if (params.get("state") !== state) throw new Error(`state mismatch in ${redirect}`);
  if (params.get("iss") !== meta.issuer) throw new Error(`iss mismatch in ${redirect}`); // RFC 9207
  if (!params.get("code")) throw new Error(`no code in ${redirect}`);

  const token = await json(
    await fetch(meta.token_endpoint, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: params.get("code"),
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: client.client_id,
        ...(opts.resource ? { resource: opts.resource } : {}),
      }),
    }),
  );
  process.stdout.write(JSON.stringify({ client_id: client.client_id, redirect, token }) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e?.message ?? e) }) + "\n");
  process.exit(1);
});
