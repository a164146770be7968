// node-oidc-provider as the peer of `portcullis-bench peers`: the client
// credentials grant with JWT access tokens, on two workers of Node's `cluster`
// module.
//
//   node server.js [--port PORT] [--alg ES256|EdDSA|RS256] [--workers N]
//
// PEER_CLIENT_ID and PEER_CLIENT_SECRET (environment) name the one client
// (defaults: `bench` and a fixed secret, for trying it by hand). Port 0, the
// default, lets the system choose a free one; every worker then shares it.
//
// The primary generates the signing key with node:crypto and hands it, as a
// private JWK, to each worker; each worker runs its own provider with the
// default in-memory adapter, the same key and the same client. For the client
// credentials grant that is enough: a JWT access token is signed and returned,
// nothing is stored or shared between workers.
//
// Once every worker listens, the primary prints one line on stdout:
//   node-oidc-provider listening on http://127.0.0.1:PORT (workers PID PID)
// which the bench waits for. Nothing is logged per request. A worker whose
// primary is gone exits (Node's cluster does so when the IPC channel closes).
//
// Every oidc-provider 9.x warns "Unsupported runtime" below Node.js 22 (it
// checks the LTS code name, no `engines` field enforces it); it runs on 20.

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

// The signing algorithms the bench asks for, and how to generate each key.
const KEY_TYPES = {
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
  RS256: ['rsa', { modulusLength: 2048 }],
};

// The issuer, about as long as Portcullis's default one (`http://127.0.0.1:NNNNN`),
// so that tokens are about the same size.
const ISSUER = 'http://oidc-peer.test:1';

// The resource server every client credentials token is for (its `aud`).
const RESOURCE = 'http://api.peer.test:1';

// The scopes of the client and of the resource server: those of a Portcullis
// bench token.
const SCOPES = 'upload-data view-indicator';

// Access token lifetime, in seconds.
const ACCESS_TOKEN_TTL = 3600;

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    alg: { type: 'string', default: 'ES256' },
    workers: { type: 'string', default: '2' },
  },
});

const port = Number.parseInt(options.port, 10);
const workers = Number.parseInt(options.workers, 10);
const { alg } = options;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port must be a port number (got ${options.port})`);
}
if (!Number.isInteger(workers) || workers < 1) {
  fail(`--workers must be at least 1 (got ${options.workers})`);
}
if (!Object.hasOwn(KEY_TYPES, alg)) {
  fail(`--alg must be one of ${Object.keys(KEY_TYPES).join(', ')} (got ${alg})`);
}

if (cluster.isPrimary) {
  primary();
} else {
  await worker();
}

// Prints `message` on stderr and exits with status 1.
function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

// Generates the key, forks the workers and says when all of them listen. A
// worker that dies ends the whole server: the bench must not measure fewer
// workers than it asked for.
function primary() {
  const [type, params] = KEY_TYPES[alg];
  const { privateKey } = crypto.generateKeyPairSync(type, params);
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('base64url'),
    alg,
    use: 'sig',
  };
  const env = {
    PEER_JWK: JSON.stringify(jwk),
    PEER_COOKIE_KEY: crypto.randomBytes(32).toString('base64url'),
  };
  let listening = 0;
  for (let i = 0; i < workers; i += 1) {
    const child = cluster.fork(env);
    child.on('listening', (address) => {
      listening += 1;
      if (listening === workers) {
        const pids = Object.values(cluster.workers).map((w) => w.process.pid);
        console.log(`node-oidc-provider listening on http://127.0.0.1:${address.port} (workers ${pids.join(' ')})`);
      }
    });
  }
  cluster.on('exit', (child, code, signal) => {
    console.error(`worker ${child.process.pid} exited (${signal ?? code}); stopping`);
    process.exit(1);
  });
  for (const name of ['SIGTERM', 'SIGINT']) {
    process.on(name, () => {
      cluster.removeAllListeners('exit');
      for (const child of Object.values(cluster.workers)) {
        child.process.kill('SIGTERM');
      }
      process.exit(0);
    });
  }
}

// One worker: its own provider with the in-memory adapter, the key from the
// primary and the one client.
async function worker() {
  const { default: Provider } = await import('oidc-provider');
  const jwk = JSON.parse(process.env.PEER_JWK);
  const configuration = {
    clients: [
      {
        client_id: process.env.PEER_CLIENT_ID ?? 'bench',
        client_secret: process.env.PEER_CLIENT_SECRET ?? 'bench-secret-for-trying-by-hand',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPES,
      },
    ],
    // The client's ID token algorithm must have a key too, though it never
    // gets an ID token; tokens are signed with the resource server's `alg`.
    clientDefaults: { id_token_signed_response_alg: alg },
    jwks: { keys: [jwk] },
    cookies: { keys: [process.env.PEER_COOKIE_KEY] },
    scopes: SCOPES.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No `resource` in the request: the token is for RESOURCE.
        defaultResource: () => RESOURCE,
        // A token from a grant (refresh, code) keeps the resource granted.
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: SCOPES,
            audience: RESOURCE,
            accessTokenTTL: ACCESS_TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
    },
    clientBasedCORS: () => false,
  };
  const provider = new Provider(ISSUER, configuration);
  provider.listen(port, '127.0.0.1');
}
