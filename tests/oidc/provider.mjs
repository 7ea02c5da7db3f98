// A real OpenID Provider (npm `oidc-provider`, version in ./VERSION) for the
// tower-jwt-auth integration tests. It issues JWT access tokens (typ at+jwt)
// through the client_credentials grant with a resource indicator.
//
//   node tests/oidc/provider.mjs --modules <dir> --port <port|0> --key-file <path>
//        [--alg ES256|RS256] [--audience <uri>] [--watch-stdin]
//
// <dir> is the folder holding node_modules/oidc-provider (an `npm install --prefix <dir>`).
// Once listening it prints exactly one line to stdout:
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT}
// and nothing else; every log goes to stderr. See README.md in this folder.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// oidc-provider prints its NOTICEs with console.info (stdout). Stdout belongs
// to the ready line, so route console.log/info/debug to stderr before loading it.
for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

function die(msg, code = 2) {
  process.stderr.write(`provider.mjs: ${msg}\n`);
  process.exit(code);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      modules: { type: 'string' },
      port: { type: 'string', default: '0' },
      'key-file': { type: 'string' },
      alg: { type: 'string' },
      audience: { type: 'string', default: 'urn:tower-jwt-auth:test' },
      'watch-stdin': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  die(err.message);
}

if (!args.modules) die('--modules <dir containing node_modules/oidc-provider> is required');
if (!args['key-file']) die('--key-file <path> is required');
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) die(`invalid --port ${args.port}`);
if (args.alg !== undefined && !['ES256', 'RS256'].includes(args.alg)) {
  die(`unsupported --alg ${args.alg} (ES256 or RS256)`);
}
const audience = args.audience;
try {
  new URL(audience); // resource indicators must be absolute URIs
} catch {
  die(`--audience must be an absolute URI, got ${audience}`);
}

// ------------------------------------------------------------ load provider

const modulesDir = path.resolve(args.modules);
let Provider;
let errors;
try {
  // createRequire needs a file path inside <dir>; the file need not exist.
  const require = createRequire(path.join(modulesDir, 'package.json'));
  const entry = require.resolve('oidc-provider');
  ({ default: Provider, errors } = await import(pathToFileURL(entry).href));
} catch (err) {
  die(`cannot load oidc-provider from ${modulesDir}/node_modules: ${err.message}`);
}

// ---------------------------------------------------------------- signing key

const keyFile = path.resolve(args['key-file']);

function generateJwk(alg) {
  const { privateKey } = alg === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(12).toString('base64url'),
    alg,
    use: 'sig',
  };
}

function algOfJwk(jwk) {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  return undefined;
}

let jwk;
if (fs.existsSync(keyFile)) {
  try {
    jwk = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
  } catch (err) {
    die(`cannot read key file ${keyFile}: ${err.message}`);
  }
  const keyAlg = algOfJwk(jwk);
  if (!keyAlg || !jwk.d) {
    die(`key file ${keyFile} must hold a private EC P-256 or RSA JWK`);
  }
  if (jwk.alg && jwk.alg !== keyAlg) die(`key file ${keyFile}: alg ${jwk.alg} does not fit kty ${jwk.kty}`);
  if (args.alg && args.alg !== keyAlg) {
    die(`key file ${keyFile} holds a ${keyAlg} key but --alg ${args.alg} was given`);
  }
  jwk = { ...jwk, alg: keyAlg, use: 'sig' };
  if (!jwk.kid) die(`key file ${keyFile} has no kid`);
} else {
  jwk = generateJwk(args.alg ?? 'ES256');
  fs.mkdirSync(path.dirname(keyFile), { recursive: true });
  const tmp = `${keyFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, keyFile);
}
const alg = jwk.alg;

// A tiny in-memory adapter (the built-in one prints a "development-only" warning).
const store = new Map();
class MemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { payload, expiresAt });
    if (payload.uid) store.set(`uid:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
  }

  #get(key) {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async find(id) { return this.#get(this.key(id)); }

  async findByUid(uid) {
    const id = this.#get(`uid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = this.#get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = this.#get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      if (entry.payload && typeof entry.payload === 'object' && entry.payload.grantId === grantId) {
        store.delete(key);
      }
    }
  }
}

function resourceServerInfo() {
  return {
    scope: 'read admin',
    audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg } },
  };
}

function buildProvider(issuer) {
  return new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks: { keys: [jwk] },
    clients: [
      {
        client_id: 'api-client',
        client_secret: 'api-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // oidc-provider accepts client_secret_post too for a client registered
        // with client_secret_basic (and the reverse).
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg,
        scope: 'read admin',
      },
      {
        client_id: 'read-client',
        client_secret: 'read-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg,
        scope: 'read',
      },
    ],
    // Declaring these makes the per-client `scope` allow-list apply to them
    // (read-client asking for admin gets invalid_scope).
    scopes: ['openid', 'read', 'admin'],
    // Explicit so oidc-provider does not print its "default ttl function" notice.
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
    },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator === audience) return resourceServerInfo();
          throw new errors.InvalidTarget();
        },
      },
    },
  });
}

// ------------------------------------------------------------------- server

let jwksFetches = 0;
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};

const server = http.createServer((req, res) => {
  const pathname = (req.url ?? '/').split('?')[0];
  if (pathname === '/__test/jwks-fetches') {
    const body = JSON.stringify({ count: jwksFetches });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
    return;
  }
  handler(req, res);
});

server.on('error', (err) => die(`listen on 127.0.0.1:${port} failed: ${err.message}`, 1));

server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;
  let provider;
  try {
    provider = buildProvider(issuer);
  } catch (err) {
    die(`provider configuration failed: ${err.stack ?? err}`, 1);
  }
  const jwksPath = new URL(provider.urlFor('jwks')).pathname;
  provider.use(async (ctx, next) => {
    if (ctx.path === jwksPath) jwksFetches += 1;
    await next();
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`provider server_error: ${err.stack ?? err}\n`);
  });
  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, port: actualPort })}\n`);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`provider.mjs: ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (args['watch-stdin']) {
  // Exit when the parent closes our stdin (e.g. the test process died).
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
