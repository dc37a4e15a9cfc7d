// A real OpenID Connect / OAuth 2.1 identity provider for Warden's tests: `oidc-provider` 9.x on
// 127.0.0.1, issuing RFC 9068 JWT access tokens for resource indicators (RFC 8707).
//
// Usage: node idp/provider.mjs [--port N] [--config FILE]
// Prints `LISTENING http://127.0.0.1:PORT` (the issuer) once ready; diagnostics go to stderr.
//
// Config (JSON, every key optional):
//   resource        default resource indicator (the token `aud`) when a request names none;
//                   any other http(s) indicator a client asks for is accepted too and becomes `aud`
//   scopes          scopes of the resource, default ["mcp:tools", "mcp:admin"]
//   accessTokenAlg  RS256 (default) | ES256 | EdDSA
//   accessTokenTTL  seconds, default 600
//   clients         confidential client-credentials clients,
//                   default [{ "client_id": "agent-ci", "client_secret": "agent-ci-secret" }]
//   users           accounts for the login page, default alice and bob with their `groups`
//   exchangeClients confidential clients allowed RFC 8693 token exchange, each
//                   {"client_id", "client_secret"}: an access token this provider issued (the
//                   subject) is exchanged for one of the same user for the requested `resource`
//   webClients      confidential authorization-code clients (Warden's consent page), each
//                   {"client_id", "client_secret", "redirect_uris", "grant_types"}; their ID tokens
//                   carry `groups`; with "refresh_token" in grant_types they get refresh tokens
//
// Test routes on the same port (loopback only, JSON in and out):
//   POST /test-admin/rotate  {"keep": false, "accessTokenAlg": "..."}  new signing keys; the old
//        ones leave the JWKS unless "keep" is true. Answers {"kids": [...new kids]}.
//   POST /test-admin/token   {"sub", "client_id", "resource", "scope", "alg", "claims"}  mints an
//        access token without a browser: for user `sub` (with its groups) or, without `sub`, a
//        client-credentials token for `client_id` (default the first client). `claims` are set
//        over the signed payload (null removes one), e.g. {"exp": 1} for an expired token.
//        Answers {"access_token": "..."}.

import { createPublicKey, generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import Provider, { errors } from "oidc-provider";

const { values: opts } = parseArgs({
  options: { port: { type: "string", default: "0" }, config: { type: "string" } },
});
const file = opts.config ? JSON.parse(readFileSync(opts.config, "utf8")) : {};
const config = {
  scopes: ["mcp:tools", "mcp:admin"],
  accessTokenAlg: "RS256",
  accessTokenTTL: 600,
  clients: [{ client_id: "agent-ci", client_secret: "agent-ci-secret" }],
  webClients: [],
  exchangeClients: [],
  users: {
    alice: { groups: ["engineering", "finance"] },
    bob: { groups: ["engineering"] },
  },
  ...file,
};

// One signing key per algorithm; the first one of an algorithm in the keystore signs.
let generation = 0;
function signingKeys() {
  generation += 1;
  const kid = (alg) => `${alg.toLowerCase()}-${generation}-${randomBytes(4).toString("hex")}`;
  const jwk = (pair, alg) => ({ ...pair.privateKey.export({ format: "jwk" }), kid: kid(alg), alg, use: "sig" });
  return [
    jwk(generateKeyPairSync("rsa", { modulusLength: 2048 }), "RS256"),
    jwk(generateKeyPairSync("ec", { namedCurve: "P-256" }), "ES256"),
    jwk(generateKeyPairSync("ed25519"), "EdDSA"),
  ];
}

function resourceServerInfo(alg = config.accessTokenAlg) {
  return {
    scope: config.scopes.join(" "),
    accessTokenFormat: "jwt",
    accessTokenTTL: config.accessTokenTTL,
    jwt: { sign: { alg } },
  };
}

const isHttpUrl = (value) => /^https?:$/.test(URL.parse(value)?.protocol ?? "");
const overrides = new WeakMap(); // token -> claims set by /test-admin/token
const cookieKeys = [randomBytes(32).toString("hex")]; // kept across key rotations

// The two deliberate development-only choices (in-memory adapter, devInteractions) are not news.
const warn = console.warn;
console.warn = (message, ...rest) => String(message).includes("development-only") || warn(message, ...rest);

function makeProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: cookieKeys },
    // Resource scopes must also be provider scopes: MCP clients register with `scope`.
    scopes: ["openid", "offline_access", ...config.scopes],
    // The groups claim rides with `openid`, so ID tokens carry it (for approver groups).
    claims: { openid: ["sub", "groups"] },
    conformIdTokenClaims: false,
    responseTypes: ["code"], // OAuth 2.1: no implicit or hybrid flows
    clients: [
      ...config.clients.map(({ client_id, client_secret }) => ({
        client_id,
        client_secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      })),
      ...config.exchangeClients.map(({ client_id, client_secret }) => ({
        client_id,
        client_secret,
        grant_types: [TOKEN_EXCHANGE],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      })),
      ...config.webClients.map(({ client_id, client_secret, redirect_uris, grant_types }) => ({
        client_id,
        client_secret,
        redirect_uris,
        grant_types: grant_types ?? ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      })),
      {
        // A public client for minted user tokens and hand-made flows (any loopback port).
        client_id: "test-app",
        application_type: "native",
        token_endpoint_auth_method: "none",
        redirect_uris: ["http://127.0.0.1/callback"],
        grant_types: ["authorization_code", "refresh_token"],
      },
    ],
    async findAccount(_ctx, id) {
      const user = Object.hasOwn(config.users, id) && config.users[id];
      return user ? { accountId: id, claims: async () => ({ sub: id, groups: user.groups }) } : undefined;
    },
    async extraTokenClaims(_ctx, token) {
      const user = Object.hasOwn(config.users, token.accountId ?? "") && config.users[token.accountId];
      return user ? { groups: user.groups } : undefined;
    },
    formats: {
      customizers: {
        jwt(_ctx, token, jwt) {
          for (const [name, value] of Object.entries(overrides.get(token) ?? {})) {
            if (value === null) delete jwt.payload[name];
            else jwt.payload[name] = value;
          }
        },
      },
    },
    pkce: { required: () => true },
    // A client allowed to refresh gets a refresh token (no `offline_access` dance needed).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.accessTokenTTL,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.accessTokenTTL,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
      IdToken: 600,
      RefreshToken: 3600,
    },
    features: {
      devInteractions: { enabled: true }, // login form: any known username, any password
      clientCredentials: { enabled: true },
      registration: { enabled: true }, // open dynamic client registration (RFC 7591)
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (!isHttpUrl(resource)) throw new errors.InvalidTarget();
          return resourceServerInfo();
        },
      },
    },
  });
  provider.on("server_error", (_ctx, error) => console.error(`[idp] server_error: ${error.stack ?? error}`));
  provider.registerGrantType(TOKEN_EXCHANGE, exchange(provider), ["subject_token", "subject_token_type", "requested_token_type", "resource", "scope"]);
  return provider;
}

// RFC 8693 token exchange: the subject must be an unexpired access token this provider signed
// (a JWT for any audience), of a known user; the answer is an access token of that user for
// the one requested resource.
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const VERIFY = { RS256: ["sha256", {}], ES256: ["sha256", { dsaEncoding: "ieee-p1363" }], EdDSA: [null, {}] };

function ownClaims(token) {
  const [h, p, sig] = String(token).split(".");
  const part = (s) => JSON.parse(Buffer.from(s, "base64url").toString());
  const header = part(h);
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk || !VERIFY[header.alg]) return undefined;
  const [digest, options] = VERIFY[header.alg];
  const { d, p: _p, q, dp, dq, qi, ...pub } = jwk;
  const key = { key: createPublicKey({ key: pub, format: "jwk" }), ...options };
  if (!verify(digest, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, "base64url"))) return undefined;
  const claims = part(p);
  return claims.iss === issuer && claims.exp > Date.now() / 1000 ? claims : undefined;
}

function exchange(provider) {
  return async function tokenExchange(ctx) {
    const { subject_token, subject_token_type, resource, scope } = ctx.oidc.params;
    if (subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest("subject_token_type must be an access token");
    let claims;
    try {
      claims = ownClaims(subject_token);
    } catch {}
    if (!claims || !Object.hasOwn(config.users, claims.sub)) throw new errors.InvalidGrant("the subject token is not valid");
    if (!resource || !isHttpUrl(resource)) throw new errors.InvalidTarget("one http(s) resource is required");
    const token = new provider.AccessToken({ accountId: claims.sub, client: ctx.oidc.client, scope: scope ?? config.scopes.join(" "), gty: "token-exchange" });
    token.resourceServer = new provider.ResourceServer(resource, resourceServerInfo());
    ctx.body = {
      access_token: await token.save(),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "Bearer",
      expires_in: token.expiration,
      scope: token.scope,
    };
  };
}

async function readBody(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

// The sign-in form's answer: a configured user (any password) signs in; any other name is
// refused with access_denied (the dev interactions alone would take any name). The consent
// form's answer goes to the dev interactions untouched.
async function signIn(req, res) {
  const details = await provider.interactionDetails(req, res).catch(() => undefined);
  if (details?.prompt.name !== "login") return false;
  const accountId = new URLSearchParams(await readBody(req)).get("login");
  const result = Object.hasOwn(config.users, accountId)
    ? { login: { accountId } }
    : { error: "access_denied", error_description: "unknown user" };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  return true;
}

async function admin(path, body) {
  if (path === "/test-admin/rotate") {
    if (body.accessTokenAlg) config.accessTokenAlg = body.accessTokenAlg;
    const fresh = signingKeys();
    keys = body.keep ? [...fresh, ...keys] : fresh;
    provider = makeProvider(issuer, keys);
    handler = provider.callback();
    return { kids: fresh.map((k) => k.kid) };
  }
  if (path === "/test-admin/token") {
    const clientId = body.client_id ?? (body.sub ? "test-app" : config.clients[0].client_id);
    const client = await provider.Client.find(clientId);
    if (!client) throw new Error(`unknown client ${clientId}`);
    const scope = body.scope ?? config.scopes.join(" ");
    const token = body.sub
      ? new provider.AccessToken({ accountId: body.sub, client, scope, gty: "authorization_code" })
      : new provider.ClientCredentials({ client, scope });
    const resource = body.resource ?? config.resource;
    if (!resource) throw new Error("no resource: pass one or configure a default");
    token.resourceServer = new provider.ResourceServer(resource, resourceServerInfo(body.alg));
    overrides.set(token, body.claims);
    return { access_token: await token.save() };
  }
  return undefined;
}

let keys = signingKeys();
let issuer;
let provider;
let handler;

const server = createServer(async (req, res) => {
  try {
    if (req.method === "POST" && req.url.startsWith("/interaction/") && (await signIn(req, res))) return;
    if (!req.url.startsWith("/test-admin/")) return handler(req, res);
    const body = await readBody(req);
    const path = new URL(req.url, issuer).pathname;
    const result = req.method === "POST" ? await admin(path, body ? JSON.parse(body) : {}) : undefined;
    res.writeHead(result ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(result ?? { error: "not found" }));
  } catch (e) {
    console.error(`[idp] ${req.method} ${req.url}: ${e?.stack ?? e}`);
    if (!res.headersSent) res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(e?.message ?? e) }));
  }
});

server.listen(Number(opts.port), "127.0.0.1", () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = makeProvider(issuer, keys);
  handler = provider.callback();
  process.stdout.write(`LISTENING ${issuer}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
