// The MCP authorization dance as an end user's app does it, with @modelcontextprotocol/client 2.x
// (`versionNegotiation: { mode: 'auto' }`) and its own OAuth support: connect without a token,
// get the 401, let the SDK discover the authorization server from the WWW-Authenticate
// challenge and the protected resource metadata (RFC 9728), register dynamically (RFC 7591),
// and start authorization code + PKCE with `resource` = the MCP URL (RFC 8707). The user signs in
// and consents in Chromium (idp/login.mjs); `finishAuth` redeems the code, then the client
// connects again with the token and runs the plan (see common.mjs).
//
// Usage: node clients/oauth-client.mjs URL PLAN_JSON
//   PLAN_JSON adds to common.mjs's plan: "user" (default "alice"), "password" (any).
// Prints one JSON line: {"challenge", "resourceMetadataUrl", "authorizationServer", "clientId",
// "authorization": {scope, resource, code_challenge_method}, "token": {header and claims of the
// access token}, "era", "protocolVersion", "tools", "calls", "elicitations", "http": [...]}.

import { randomBytes } from "node:crypto";

import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";

import { login } from "../idp/login.mjs";
import { args, elicitationAnswerer, finish, guard, runPlan } from "./common.mjs";

/** What the SDK asks an app to keep between the redirect and the callback: here, memory. */
class BrowserLoginProvider {
  redirectUrl = "http://127.0.0.1/callback"; // native app, loopback (any port is accepted)
  clientMetadata = {
    client_name: "warden-interop-oauth-client",
    redirect_uris: [this.redirectUrl],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
  saved = {};

  state() {
    return (this.saved.state = randomBytes(16).toString("base64url"));
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(client) {
    this.saved.client = client;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.saved.authorizationUrl = url;
  }
  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }
  discoveryState() {
    return this.saved.discovery;
  }
}

function decodeJwt(token) {
  const parts = token?.split(".");
  if (parts?.length !== 3) return null;
  const [header, claims] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
  return { header, claims };
}

guard(async () => {
  const { url, plan } = args();
  const provider = new BrowserLoginProvider();
  const http = [];
  let challenge = null;
  const recordingFetch = async (input, init) => {
    const response = await fetch(input, init);
    const target = new URL(input instanceof Request ? input.url : String(input));
    http.push(`${init?.method ?? "GET"} ${target.origin}${target.pathname} ${response.status}`);
    if (response.status === 401 && challenge === null) challenge = response.headers.get("www-authenticate");
    return response;
  };
  const elicitations = [];
  const connect = async () => {
    const client = new Client(
      { name: "interop-oauth-client", version: "2.0.0" },
      { capabilities: { elicitation: { form: {}, url: {} } }, versionNegotiation: { mode: "auto" } },
    );
    client.setRequestHandler("elicitation/create", elicitationAnswerer(plan, elicitations));
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch });
    await client.connect(transport);
    return { client, transport };
  };

  let session;
  try {
    session = await connect(); // no token yet: only a server without authentication lets this through
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    const authorizationUrl = provider.saved.authorizationUrl;
    if (!authorizationUrl) throw new Error(`unauthorized without an authorization URL: ${e.message}`);
    const redirect = await login(authorizationUrl.href, plan.user ?? "alice", { password: plan.password });
    const params = new URL(redirect).searchParams;
    if (params.get("state") !== provider.saved.state) throw new Error(`state mismatch in ${redirect}`);
    if (params.has("error")) throw new Error(`authorization failed: ${redirect}`);
    // Any transport of this provider can redeem the code; then connect again with the token.
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch });
    await transport.finishAuth(params);
    session = await connect();
  }

  const { client } = session;
  const { tools, calls } = await runPlan(client, plan);
  const authorization = provider.saved.authorizationUrl?.searchParams;
  await finish(client, {
    challenge,
    resourceMetadataUrl: provider.saved.discovery?.resourceMetadataUrl ?? null,
    authorizationServer: provider.saved.discovery?.authorizationServerUrl ?? null,
    clientId: provider.saved.client?.client_id ?? null,
    authorization: authorization
      ? {
          scope: authorization.get("scope"),
          resource: authorization.get("resource"),
          code_challenge_method: authorization.get("code_challenge_method"),
        }
      : null,
    token: decodeJwt(provider.saved.tokens?.access_token),
    era: client.getProtocolEra() ?? null,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
    tools,
    calls,
    elicitations,
    http,
  });
});
