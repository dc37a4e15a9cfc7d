// A minimal OAuth-protected MCP endpoint in front of an MCP server: the reference the client
// scripts are checked against before Warden's identity stage runs them (same role, same
// rules: RFC 9728 metadata, 401 challenge, RFC 9068 JWT validation, token never forwarded).
//
// Usage: node idp/resource-server.mjs --issuer ISSUER --upstream URL [--scope "mcp:tools"]
// Prints `LISTENING http://127.0.0.1:PORT/mcp`. The protected resource metadata is at
// /.well-known/oauth-protected-resource/mcp and /.well-known/oauth-protected-resource.
// GET /test-admin/seen lists what each accepted request carried: the token's `sub` and `jti`,
// the JSON-RPC method and the tool's name and arguments (a test sees whose token came with
// which call); refused requests are counted in `refused`.

import { createPublicKey, verify } from "node:crypto";
import { createServer } from "node:http";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: { issuer: { type: "string" }, upstream: { type: "string" }, scope: { type: "string", default: "mcp:tools" } },
});
if (!opts.issuer || !opts.upstream) {
  console.error("usage: node idp/resource-server.mjs --issuer ISSUER --upstream URL [--scope S]");
  process.exit(2);
}

const VERIFY = { RS256: ["sha256", {}], ES256: ["sha256", { dsaEncoding: "ieee-p1363" }], EdDSA: [null, {}] };
const part = (s) => JSON.parse(Buffer.from(s, "base64url").toString());

/** The token's claims when it is an RFC 9068 access token of the issuer for `resource`. */
async function validate(token, resource) {
  const [h, p, sig] = token.split(".");
  const header = part(h);
  const claims = part(p);
  if (header.typ !== "at+jwt" || !VERIFY[header.alg]) throw new Error(`unexpected header ${JSON.stringify(header)}`);
  const meta = await (await fetch(new URL("/.well-known/openid-configuration", opts.issuer))).json();
  const { keys } = await (await fetch(meta.jwks_uri)).json(); // fetched each time: rotation just works
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`unknown kid ${header.kid}`);
  const [digest, options] = VERIFY[header.alg];
  const key = { key: createPublicKey({ key: jwk, format: "jwk" }), ...options };
  if (!verify(digest, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, "base64url"))) throw new Error("bad signature");
  if (claims.iss !== meta.issuer) throw new Error("wrong issuer");
  if (![claims.aud].flat().includes(resource)) throw new Error("wrong audience");
  if (!(claims.exp > Date.now() / 1000)) throw new Error("expired");
  return claims;
}

const seen = [];
let refused = 0;

async function readBody(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

const server = createServer(async (req, res) => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const resource = `${origin}/mcp`;
  const path = new URL(req.url, origin).pathname;
  if (path === "/test-admin/seen") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ seen, refused }));
  }
  if (path === "/.well-known/oauth-protected-resource/mcp" || path === "/.well-known/oauth-protected-resource") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ resource, authorization_servers: [opts.issuer], scopes_supported: opts.scope.split(" ") }));
  }
  if (path !== "/mcp") return res.writeHead(404).end();

  const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const claims = token && (await validate(token, resource).catch((e) => void console.error(`[resource-server] ${e.message}`)));
  if (!claims) {
    refused += 1;
    const metadata = `${origin}/.well-known/oauth-protected-resource/mcp`;
    res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${metadata}", scope="${opts.scope}"` });
    return res.end();
  }

  const headers = { ...req.headers };
  for (const name of ["host", "authorization", "connection", "content-length"]) delete headers[name];
  const body = ["GET", "HEAD"].includes(req.method) ? undefined : await readBody(req);
  let message = {};
  try {
    message = body ? JSON.parse(body) : {};
  } catch {}
  seen.push({ sub: claims.sub, jti: claims.jti, http: req.method, method: message.method, name: message.params?.name, arguments: message.params?.arguments });
  const upstream = await fetch(opts.upstream, { method: req.method, headers, body, duplex: "half" });
  const answer = Object.fromEntries(upstream.headers);
  for (const name of ["content-length", "content-encoding", "transfer-encoding", "connection"]) delete answer[name];
  res.writeHead(upstream.status, answer);
  if (upstream.body) Readable.fromWeb(upstream.body).pipe(res);
  else res.end();
});

server.listen(0, "127.0.0.1", () => process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}/mcp\n`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
